//! Roster: a SCIM 2.0 service provider that enforces a workplace account lifecycle.

pub mod admin;
pub mod auth;
pub mod backup;
pub mod cli;
pub mod clock;
pub mod config;
pub mod context;
pub mod db;
pub mod error;
pub mod groups;
pub mod http;
pub mod lifecycle;
pub mod listing;
pub mod metrics;
pub mod probe;
pub mod product;
pub mod readiness;
pub mod routes;
pub mod scim;
pub mod search;
pub mod startup;
pub mod state;
pub mod sweep;
pub mod telemetry;
pub mod users;
pub mod validation;
