//! [`StrictJson`], a JSON request payload whose errors name the field.
//!
//! poem-openapi's `Json<T>` reports a missing field or a wrong type as
//! "Expected input type "string", found null" without saying which field.
//! This payload documents the same schema, but first deserializes with
//! serde (through `serde_path_to_error`, so the message carries the field's
//! path: "missing field `operation`", "duration: invalid type ...") and then
//! runs poem-openapi's parser for the declared validators, whose messages
//! name the field too. A top-level `null` is refused by name: no field of
//! these bodies is declared nullable, so `null` is not "left out".

use std::ops::Deref;

use poem::{FromRequest, Request, RequestBody, Result};
use poem_openapi::error::ParseRequestPayloadError;
use poem_openapi::payload::{ParsePayload, Payload};
use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::{ParseFromJSON, Type};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A JSON body deserialized strictly; see the module docs.
#[derive(Debug, Clone)]
pub struct StrictJson<T>(pub T);

impl<T> Deref for StrictJson<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Type> Payload for StrictJson<T> {
    const CONTENT_TYPE: &'static str = "application/json; charset=utf-8";

    fn check_content_type(content_type: &str) -> bool {
        content_type.parse::<mime::Mime>().is_ok_and(|mime| {
            mime.type_() == "application"
                && (mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json"))
        })
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

fn payload_error(reason: impl Into<String>) -> poem::Error {
    ParseRequestPayloadError {
        reason: reason.into(),
    }
    .into()
}

/// serde's message without the value it quotes (`invalid type: string
/// "…", expected f64` → `invalid type: a string, expected f64`; `unknown
/// variant `…`` → `unknown variant`): an answer names the field and what
/// was expected, and never echoes what was sent, which may be a secret.
fn without_values(message: &str) -> String {
    // (what introduces a quoted value, what replaces it, its closing quote)
    const QUOTED: [(&str, &str, char); 2] = [
        ("string \"", "a string", '"'),
        ("unknown variant `", "unknown variant", '`'),
    ];
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some((at, (opening, replacement, quote))) = QUOTED
        .iter()
        .filter_map(|q| rest.find(q.0).map(|at| (at, q)))
        .min_by_key(|(at, _)| *at)
    {
        out.push_str(&rest[..at]);
        out.push_str(replacement);
        rest = skip_quoted(&rest[at + opening.len()..], *quote);
    }
    out.push_str(rest);
    out
}

/// What follows the closing `quote` (a backslash escapes one character).
fn skip_quoted(text: &str, quote: char) -> &str {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            c if c == quote && !escaped => return &text[i + c.len_utf8()..],
            _ => escaped = false,
        }
    }
    ""
}

impl<T: ParseFromJSON + DeserializeOwned> ParsePayload for StrictJson<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> Result<Self> {
        let data = Vec::<u8>::from_request(request, body).await?;
        if data.is_empty() {
            return Err(payload_error(
                "the request body is empty; expected a JSON object",
            ));
        }
        let value: Value = serde_json::from_slice(&data)
            .map_err(|e| payload_error(format!("malformed JSON: {e}")))?;
        if !value.is_object() {
            return Err(payload_error(format!(
                "expected a JSON object `{}`",
                T::name()
            )));
        }
        // An optional field is left out, never `null`: the schema does not
        // declare them nullable, and serde would read `null` as "left out".
        if let Some((field, _)) = value
            .as_object()
            .and_then(|object| object.iter().find(|(_, v)| v.is_null()))
        {
            let field: String = field.chars().take(64).collect();
            return Err(payload_error(format!(
                "field `{field}`: null is not allowed; leave the field out instead"
            )));
        }
        if let Err(error) = serde_path_to_error::deserialize::<_, T>(value.clone()) {
            let path = error.path().to_string();
            let inner = error.into_inner();
            let inner = without_values(&inner.to_string());
            return Err(payload_error(if path == "." {
                inner
            } else {
                format!("field `{path}`: {inner}")
            }));
        }
        T::parse_from_json(Some(value))
            .map(Self)
            .map_err(|e| payload_error(without_values(&e.into_message())))
    }
}

poem_openapi::impl_apirequest_for_payload!(StrictJson<T>, T: ParseFromJSON + DeserializeOwned);

#[cfg(test)]
mod tests {
    use super::without_values;

    #[test]
    fn error_messages_keep_the_field_and_drop_the_value() {
        assert_eq!(
            without_values(r#"invalid type: string "hunter2", expected f64"#),
            "invalid type: a string, expected f64"
        );
        assert_eq!(
            without_values(r#"invalid value: string "a \"quoted\" secret", expected x"#),
            "invalid value: a string, expected x"
        );
        assert_eq!(
            without_values("unknown variant `hunter2`, expected one of `a`, `b`"),
            "unknown variant, expected one of `a`, `b`"
        );
        assert_eq!(
            without_values("missing field `operation`"),
            "missing field `operation`"
        );
        assert_eq!(without_values(r#"string "unterminated"#), "a string");
    }
}
