//! Serde adapters for MLflow's JSON: int64 fields that may arrive as strings, and metric values
//! where NaN and ±Inf travel as the strings `"NaN"`, `"Infinity"` and `"-Infinity"` (protobuf's JSON
//! mapping, which is what MLflow's own client sends).

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serializer};
use std::fmt;

/// Serializes an `f64` the way protobuf's JSON mapping does.
pub fn serialize_f64<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    if value.is_nan() {
        serializer.serialize_str("NaN")
    } else if *value == f64::INFINITY {
        serializer.serialize_str("Infinity")
    } else if *value == f64::NEG_INFINITY {
        serializer.serialize_str("-Infinity")
    } else {
        serializer.serialize_f64(*value)
    }
}

/// Deserializes an `f64` from a JSON number or one of the protobuf strings.
pub fn deserialize_f64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = f64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number or \"NaN\" / \"Infinity\" / \"-Infinity\"")
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
            Ok(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
            match v {
                "NaN" => Ok(f64::NAN),
                "Infinity" => Ok(f64::INFINITY),
                "-Infinity" => Ok(f64::NEG_INFINITY),
                other => other
                    .parse()
                    .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self)),
            }
        }
    }
    deserializer.deserialize_any(V)
}

/// Deserializes an `i64` from a JSON number or a decimal string (protobuf's int64 mapping).
pub fn deserialize_i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Lenient {
        Int(i64),
        Text(String),
    }
    match Lenient::deserialize(deserializer)? {
        Lenient::Int(v) => Ok(v),
        Lenient::Text(s) => s.parse().map_err(de::Error::custom),
    }
}

/// Like [`deserialize_i64`] for optional fields.
pub fn deserialize_opt_i64<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    struct Wrap(#[serde(deserialize_with = "deserialize_i64")] i64);
    Ok(Option::<Wrap>::deserialize(deserializer)?.map(|w| w.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;

    #[derive(Serialize, Deserialize, Debug)]
    struct M {
        #[serde(serialize_with = "serialize_f64", deserialize_with = "deserialize_f64")]
        v: f64,
        #[serde(deserialize_with = "deserialize_i64")]
        t: i64,
        #[serde(default, deserialize_with = "deserialize_opt_i64")]
        o: Option<i64>,
    }

    #[test]
    fn non_finite_values_use_protobuf_strings() {
        let enc = |v: f64| serde_json::to_string(&M { v, t: 1, o: None }).expect("serialize");
        assert_eq!(enc(f64::NAN), r#"{"v":"NaN","t":1,"o":null}"#);
        assert_eq!(enc(f64::INFINITY), r#"{"v":"Infinity","t":1,"o":null}"#);
        assert_eq!(
            enc(f64::NEG_INFINITY),
            r#"{"v":"-Infinity","t":1,"o":null}"#
        );
        assert_eq!(enc(0.25), r#"{"v":0.25,"t":1,"o":null}"#);
    }

    #[test]
    fn lenient_decoding() {
        let m: M = serde_json::from_str(r#"{"v":"NaN","t":"12","o":"7"}"#).expect("decode");
        assert!(m.v.is_nan());
        assert_eq!((m.t, m.o), (12, Some(7)));
        let m: M = serde_json::from_str(r#"{"v":3,"t":4}"#).expect("decode");
        assert_eq!((m.v, m.t, m.o), (3.0, 4, None));
        let m: M = serde_json::from_str(r#"{"v":"-Infinity","t":4}"#).expect("decode");
        assert_eq!(m.v, f64::NEG_INFINITY);
        assert!(serde_json::from_str::<M>(r#"{"v":"x","t":4}"#).is_err());
        assert!(serde_json::from_str::<M>(r#"{"v":1,"t":"x"}"#).is_err());
    }
}
