//! The JSON request body of SCIM writes: media type checked, size capped while it streams in,
//! and syntax errors answered in the SCIM error shape.

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use futures_util::StreamExt;
use serde_json::Value;

use crate::error::{ScimError, ScimType};
use crate::state::AppState;

/// A parsed JSON body. `application/scim+json` and `application/json` are accepted (RFC 7644
/// §3.1; Okta's tests send the latter), as is a body without a Content-Type.
pub struct JsonBody(pub Value);

fn accepted_media_type(req: &HttpRequest) -> Result<(), ScimError> {
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else { return Ok(()) };
    let essence = value.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if matches!(essence.as_str(), "application/scim+json" | "application/json" | "") {
        Ok(())
    } else {
        Err(ScimError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type {essence:?} is not accepted; send application/scim+json"),
        ))
    }
}

impl FromRequest for JsonBody {
    type Error = ScimError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let settings = req.app_data::<web::Data<AppState>>().map(|s| &s.settings);
        let limit = settings.map(|s| s.body_limit).unwrap_or(1024 * 1024);
        let deadline = settings.map(|s| s.body_read_timeout_secs).unwrap_or(0);
        let media = accepted_media_type(req);
        let mut payload = payload.take();
        Box::pin(async move {
            media?;
            let read = async {
                let mut body = web::BytesMut::new();
                while let Some(chunk) = payload.next().await {
                    let chunk = chunk.map_err(|e| {
                        ScimError::bad_request(
                            ScimType::InvalidSyntax,
                            format!("The request body could not be read: {e}"),
                        )
                    })?;
                    if body.len() + chunk.len() > limit {
                        return Err(ScimError::payload_too_large(limit));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(body)
            };
            // A body that trickles in (or never ends) would keep its connection and worker
            // memory for as long as the client likes: it gets this long, then 408 (RFC 9110
            // §15.5.9), and actix closes the connection, whose body is left unread.
            let body = if deadline == 0 {
                read.await?
            } else {
                tokio::time::timeout(std::time::Duration::from_secs(deadline), read).await.map_err(|_| {
                    ScimError::new(
                        StatusCode::REQUEST_TIMEOUT,
                        format!("The request body did not arrive in full within {deadline} s"),
                    )
                })??
            };
            parse(&body).map(JsonBody)
        })
    }
}

/// Parses a body; the error says what is wrong and where.
pub fn parse(body: &[u8]) -> Result<Value, ScimError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ScimError::bad_request(
            ScimType::InvalidSyntax,
            "The request body is empty; a JSON object is expected",
        ));
    }
    let text = std::str::from_utf8(body).map_err(|e| {
        ScimError::bad_request(ScimType::InvalidSyntax, format!("The request body is not valid UTF-8: {e}"))
    })?;
    let value = serde_json::from_str(text).map_err(|e| {
        ScimError::bad_request(ScimType::InvalidSyntax, format!("The request body is not valid JSON: {e}"))
    })?;
    // JSON text holds U+0000 only as the escape `\u0000` (a raw control character is not JSON):
    // without one the walk, which writes the path of every member it passes, is not needed.
    if let Some(at) = text.contains("\\u0000").then(|| nul_at(&value, "$")).flatten() {
        // PostgreSQL text cannot hold U+0000: one in a stored value, a looked-up id or a search
        // term failed in the database with a 500.
        return Err(ScimError::bad_request(
            ScimType::InvalidValue,
            format!("The request body holds U+0000 (NUL) at {at}; strings must not contain it"),
        ));
    }
    Ok(value)
}

/// Where the first string or key holding U+0000 is, as a JSON path. serde_json caps nesting at
/// 128 levels, so the recursion is bounded.
fn nul_at(value: &Value, at: &str) -> Option<String> {
    match value {
        Value::String(s) if s.contains('\0') => Some(at.to_owned()),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, v)| nul_at(v, &format!("{at}[{i}]"))),
        Value::Object(fields) => fields.iter().find_map(|(k, v)| {
            let here = format!("{at}.{k}");
            if k.contains('\0') {
                Some(here)
            } else {
                nul_at(v, &here)
            }
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_name_the_line_and_column() {
        let err = parse(b"{\"userName\": }").unwrap_err();
        assert_eq!(err.scim_type, Some(ScimType::InvalidSyntax));
        assert!(err.detail.contains("line 1 column"), "{}", err.detail);
    }

    #[test]
    fn invalid_utf8_and_empty_bodies_are_invalid_syntax() {
        assert!(parse(&[b'"', 0xff, b'"']).unwrap_err().detail.contains("UTF-8"));
        assert!(parse(b"  ").unwrap_err().detail.contains("empty"));
    }

    #[test]
    fn nul_anywhere_in_the_body_is_refused() {
        // PostgreSQL cannot store U+0000; before this, {"userId": "\u0000"} to /api/v1/sessions
        // and a content body with one answered 500.
        let err = parse(br#"{"Operations": [{"op": "add", "value": {"nickName": "a\u0000"}}]}"#).unwrap_err();
        assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
        assert!(err.detail.contains("$.Operations[0].value.nickName"), "{}", err.detail);
        assert!(parse(br#"{"userId": "\u0000"}"#).is_err());
        assert!(parse(br#"{"a\u0000": 1}"#).unwrap_err().detail.contains("U+0000"));
        assert!(parse(br#"{"title": "a\u0001 b"}"#).is_ok());
        // A backslash followed by the letters: no NUL.
        assert_eq!(parse(br#"{"title": "a\\u0000"}"#).unwrap()["title"], "a\\u0000");
    }

    #[test]
    fn absurdly_deep_nesting_is_refused_without_a_crash() {
        let deep = "[".repeat(100_000);
        assert_eq!(parse(deep.as_bytes()).unwrap_err().scim_type, Some(ScimType::InvalidSyntax));
    }
}
