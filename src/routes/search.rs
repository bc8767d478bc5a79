//! `POST /.search` (RFC 7644 §3.4.3): one search over every resource type, served by the one
//! list handler (see [`crate::search`]).

use actix_web::web;

use super::list::search;
use super::resource;
use crate::search::AllTypes;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/.search", "POST").route(web::post().to(search::<AllTypes>)));
}
