//! How a refused setting or request field is worded, wherever `validator` rules refuse it:
//! settings, tenant policy, token names and product API bodies all answer in the same sentences.

use serde_json::Value;
use validator::{ValidationError, ValidationErrors};

/// One sentence per refusal, naming the field as `name` spells it (a settings key, a JSON
/// member), fields in alphabetical order so that the same input always reads the same.
pub fn describe(errors: &ValidationErrors, name: impl Fn(&str) -> String) -> String {
    let mut fields: Vec<_> = errors.field_errors().into_iter().collect();
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    let sentences: Vec<String> =
        fields.iter().flat_map(|(field, errs)| errs.iter().map(|e| sentence(&name(field), e))).collect();
    sentences.join("; ")
}

/// `user_id` as the JSON member `userId` (serde's `rename_all = "camelCase"`).
pub fn camel_case(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut upper = false;
    for c in field.chars() {
        match c {
            '_' => upper = true,
            c if upper => {
                out.extend(c.to_uppercase());
                upper = false;
            }
            c => out.push(c),
        }
    }
    out
}

fn sentence(field: &str, e: &ValidationError) -> String {
    // A rule that words its own refusal (custom rules, or values that must not be echoed).
    if let Some(message) = &e.message {
        return message.to_string();
    }
    let param = |key: &str| e.params.get(key).filter(|v| !v.is_null()).map(shown);
    let rule = match (e.code.as_ref(), param("min"), param("max")) {
        ("range", Some(min), Some(max)) => format!("{field} must be between {min} and {max}"),
        ("range", Some(min), None) => format!("{field} must be at least {min}"),
        ("range", None, Some(max)) => format!("{field} must be at most {max}"),
        ("length", Some(min), None) if min == "1" => format!("{field} must not be empty"),
        ("length", Some(min), Some(max)) => format!("{field} must be {min} to {max} characters long"),
        ("length", Some(min), None) => format!("{field} must be at least {min} characters long"),
        ("length", None, Some(max)) => format!("{field} must be at most {max} characters long"),
        (code, ..) => format!("{field} is refused by the rule {code:?}"),
    };
    match e.params.get("value") {
        // The length, not the text: an oversized value is not worth echoing back.
        Some(Value::String(s)) if e.code == "length" && s.is_empty() => rule,
        Some(Value::String(s)) if e.code == "length" => format!("{rule}; got {}", s.chars().count()),
        Some(value) if !value.is_null() => format!("{rule}; got {}", shown(value)),
        _ => rule,
    }
}

/// Numbers as written, strings quoted (so an empty or space-only value is visible).
fn shown(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_members_are_named_as_clients_spell_them() {
        assert_eq!(camel_case("user_id"), "userId");
        assert_eq!(camel_case("recipient_id"), "recipientId");
        assert_eq!(camel_case("body"), "body");
    }
}
