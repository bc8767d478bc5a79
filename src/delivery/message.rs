//! What a webhook receives: one outbox event as a Standard Webhooks message, built from the
//! event row when it is sent.

use chrono::NaiveDateTime;
use serde_json::{json, Value};

use super::signing::{signature_header, Secret};
use crate::db::records::EventRow;

pub struct Message {
    /// `webhook-id`: the same for every try and replay of one event to one tenant's endpoints,
    /// so receivers can drop what they already handled.
    pub id: String,
    pub body: Vec<u8>,
    pub content_type: &'static str,
}

impl Message {
    /// `{"type", "timestamp", "eventId", "userId", "data"}`: the event's type, its commit time,
    /// its number in the tenant's feed (`GET /api/v1/events`), the account it is about, and its
    /// payload as the feed shows it.
    pub fn of_event(tenant_id: &str, event: &EventRow) -> Message {
        let data: Value = serde_json::from_str(&event.payload).unwrap_or(Value::Null);
        let body = json!({
            "type": event.kind,
            "timestamp": crate::clock::time(event.created_at),
            "eventId": event.tenant_seq,
            "userId": event.user_id,
            "data": data,
        });
        Message {
            id: format!("evt_{tenant_id}_{}", event.tenant_seq),
            body: body.to_string().into_bytes(),
            content_type: "application/json",
        }
    }

    /// What `roster webhook test` sends: a message of type `webhook.test` that no event stands
    /// behind.
    pub fn test(now: NaiveDateTime) -> Message {
        let body = json!({"type": "webhook.test", "timestamp": crate::clock::time(now), "data": {}});
        Message {
            id: format!("test_{}", uuid::Uuid::new_v4().simple()),
            body: body.to_string().into_bytes(),
            content_type: "application/json",
        }
    }

    /// The export of a deleted account for the tenant's archive URL: the JSON Lines the archive
    /// directory would hold (`application/x-ndjson`), its `webhook-id` the same for every try.
    pub fn of_export(tenant_id: &str, seq: i64, export: Vec<u8>) -> Message {
        Message { id: format!("arch_{tenant_id}_{seq}"), body: export, content_type: "application/x-ndjson" }
    }

    /// The signed POST. `webhook-timestamp` is the real time of sending (receivers refuse
    /// messages too far from their own clock), whatever time the application acts at.
    pub fn request(&self, client: &reqwest::Client, url: reqwest::Url, secrets: &[Secret]) -> reqwest::RequestBuilder {
        let timestamp = chrono::Utc::now().timestamp();
        client
            .post(url)
            .header("content-type", self.content_type)
            .header("webhook-id", &self.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature_header(secrets, &self.id, timestamp, &self.body))
            .body(self.body.clone())
    }
}
