//! Deserializers for the loose encodings the Elixir side produces (`nil` for empty maps, booleans as text).

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Treats JSON `null` as the type's default (Elixir encodes a missing map as `nil`).
pub fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Accepts `true`/`false`, `"true"`/`"false"` (any case), `1`/`0` and `null` (false), as RunWorker did.
pub fn lenient_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(false),
        Value::Bool(b) => Ok(b),
        Value::Number(n) if n.as_i64() == Some(1) => Ok(true),
        Value::Number(n) if n.as_i64() == Some(0) => Ok(false),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        other => Err(serde::de::Error::custom(format!(
            "expected a boolean (true, false, \"true\", \"false\", 1 or 0), got {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Flag {
        #[serde(deserialize_with = "lenient_bool")]
        on: bool,
    }

    fn flag(json: &str) -> Result<bool, serde_json::Error> {
        serde_json::from_str::<Flag>(json).map(|f| f.on)
    }

    #[test]
    fn booleans_come_in_four_spellings() {
        assert!(flag(r#"{"on":true}"#).unwrap());
        assert!(flag(r#"{"on":"TRUE"}"#).unwrap());
        assert!(flag(r#"{"on":1}"#).unwrap());
        assert!(!flag(r#"{"on":0}"#).unwrap());
        assert!(!flag(r#"{"on":null}"#).unwrap());
    }

    #[test]
    fn other_values_are_not_booleans() {
        assert!(flag(r#"{"on":2}"#).is_err());
        assert!(flag(r#"{"on":"yes"}"#).is_err());
    }
}
