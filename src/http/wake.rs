//! Wakes the event sender after a write request, which may have committed events: deliveries
//! then leave at once instead of at the sender's next look at the outbox.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, Error};

use crate::delivery::Wake;

pub async fn wake_sender(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let wake = req.app_data::<web::Data<Wake>>().cloned();
    let writes = !req.method().is_safe();
    let response = next.call(req).await?;
    // Answered: the request's transaction has committed (or rolled back, on an error).
    if writes && response.status().is_success() {
        if let Some(wake) = wake {
            wake.notify();
        }
    }
    Ok(response)
}
