//! MLflow key rules for metric and parameter names, and canonical parameter keys.

use std::borrow::Cow;
use std::io::Write as _;

use serde_json::{Map, Value};

use super::FieldError;

const MAX_KEY_CHARS: usize = 250;

/// Checks a metric or parameter name against MLflow's rules: 1–250 characters of letters, digits,
/// `_ - . / space`, no `..` segments and not absolute.
pub fn check_metric_name(field: &str, name: &str) -> Result<(), FieldError> {
    if name.is_empty() {
        return Err(FieldError::new(field, "name must not be empty"));
    }
    if name.chars().count() > MAX_KEY_CHARS {
        return Err(FieldError::new(
            field,
            format!("name longer than {MAX_KEY_CHARS} characters"),
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ' ' | ':')))
    {
        return Err(FieldError::new(
            field,
            format!("name {name:?} contains {bad:?}; use letters, digits, _ - . / : and spaces"),
        ));
    }
    if name.starts_with('/') || name.split('/').any(|seg| seg == "..") {
        return Err(FieldError::new(
            field,
            format!("name {name:?} must be a relative path without `..`"),
        ));
    }
    Ok(())
}

/// Flattens nested objects into dotted keys (`{"a":{"b":1}}` → `{"a.b":1}`), keeping order.
pub fn flatten(map: &Map<String, Value>) -> Map<String, Value> {
    let mut leaves = Vec::with_capacity(map.len());
    collect_flat("", map, &mut leaves);
    leaves
        .into_iter()
        .map(|(key, value)| (key.into_owned(), value.clone()))
        .collect()
}

/// A canonical text form of a parameter set, equal for equal parameters however they were encoded
/// (key order, nesting vs dotted keys, `1` vs `1.0`). Used to match trials to pending proposals.
///
/// The text is a JSON object of the flattened parameters (see [`flatten`]; of two spellings of one dotted key
/// the later wins) sorted by key, with every finite number written as the shortest `{:e}` form of its `f64`.
pub fn params_key(params: &Map<String, Value>) -> String {
    let mut out = Vec::with_capacity(16 * params.len() + 2);
    write_params_key(params, &mut out);
    // Only UTF-8 was written: keys and strings come from `String`s, the rest is ASCII.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn write_params_key(params: &Map<String, Value>, out: &mut Vec<u8>) {
    let mut entries: Vec<(Cow<'_, str>, &Value)> = Vec::with_capacity(params.len());
    collect_flat("", params, &mut entries);
    // Stable: of equal keys the later (the one `flatten` keeps) is last, and the others are dropped.
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut first = true;
    out.push(b'{');
    for (i, (key, value)) in entries.iter().enumerate() {
        if entries.get(i + 1).is_some_and(|next| next.0 == *key) {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        write_json(key.as_ref(), out);
        out.push(b':');
        canonical_value(value, out);
    }
    out.push(b'}');
}

/// The leaves of `map` under their dotted keys, in document order, without copying them.
fn collect_flat<'a>(
    prefix: &str,
    map: &'a Map<String, Value>,
    out: &mut Vec<(Cow<'a, str>, &'a Value)>,
) {
    for (k, v) in map {
        let key: Cow<'a, str> = if prefix.is_empty() {
            Cow::Borrowed(k.as_str())
        } else {
            Cow::Owned(format!("{prefix}.{k}"))
        };
        match v {
            Value::Object(inner) if !inner.is_empty() => collect_flat(&key, inner, out),
            other => out.push((key, other)),
        }
    }
}

fn write_json<T: serde::Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    // Writing a string, bool or null into a Vec cannot fail.
    let _ = serde_json::to_writer(out, value);
}

/// A 64-bit FNV-1a hash of a [`params_key`]: what the database indexes pending proposals by (a short integer
/// instead of the whole text). Equal keys give equal hashes on every platform and release; matches are
/// confirmed on the key itself.
pub fn params_hash(key: &str) -> i64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;
    let hash = key
        .bytes()
        .fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME));
    i64::from_ne_bytes(hash.to_ne_bytes())
}

fn canonical_value(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Number(n) => {
            // Writing into a Vec cannot fail.
            let _ = match n.as_f64() {
                Some(f) if f.is_finite() => write!(out, "{f:e}"),
                _ => write!(out, "{n}"),
            };
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_value(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => write_params_key(map, out),
        other => write_json(other, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn params_key_ignores_order_nesting_and_number_spelling() {
        let a = obj(json!({"lr": 0.01, "controller": {"smooth": 1}, "head": "kgam"}));
        let b = obj(json!({"head": "kgam", "controller.smooth": 1.0, "lr": 0.01}));
        assert_eq!(params_key(&a), params_key(&b));
        let c = obj(json!({"head": "kgam", "controller.smooth": 2, "lr": 0.01}));
        assert_ne!(params_key(&a), params_key(&c));
    }

    #[test]
    fn params_hash_is_fnv1a_of_the_key() {
        assert_eq!(params_hash(""), 0xcbf2_9ce4_8422_2325_u64 as i64);
        assert_eq!(params_hash("a"), 0xaf63_dc4c_8601_ec8c_u64 as i64);
        let a = params_key(&obj(json!({"lr": 0.01, "n": 2})));
        let b = params_key(&obj(json!({"n": 2.0, "lr": 0.01})));
        assert_eq!(params_hash(&a), params_hash(&b));
        assert_ne!(params_hash(&a), params_hash("{}"));
    }

    #[test]
    fn mlflow_key_rules() {
        assert!(check_metric_name("m", "val/loss-1.a b").is_ok());
        assert!(check_metric_name("m", "").is_err());
        assert!(check_metric_name("m", "a;drop").is_err());
        assert!(check_metric_name("m", "../x").is_err());
        assert!(check_metric_name("m", &"a".repeat(251)).is_err());
    }

    /// Flattening as first specified: insert every leaf into a map under its dotted key.
    fn reference_flatten(prefix: &str, map: &Map<String, Value>, out: &mut Map<String, Value>) {
        for (k, v) in map {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                Value::Object(inner) if !inner.is_empty() => reference_flatten(&key, inner, out),
                other => {
                    out.insert(key, other.clone());
                }
            }
        }
    }

    /// The key as first specified: flatten into a map, sort, and print every piece on its own.
    fn reference_key(params: &Map<String, Value>) -> String {
        let mut flat = Map::new();
        reference_flatten("", params, &mut flat);
        let mut entries: Vec<(&String, &Value)> = flat.iter().collect();
        entries.sort_by(|a, b| a.0.cmp(b.0));
        let body: Vec<String> = entries
            .into_iter()
            .map(|(k, v)| format!("{}:{}", Value::String(k.clone()), reference_value(v)))
            .collect();
        format!("{{{}}}", body.join(","))
    }

    fn reference_value(v: &Value) -> String {
        match v {
            Value::Number(n) => match n.as_f64() {
                Some(f) if f.is_finite() => format!("{f:e}"),
                _ => n.to_string(),
            },
            Value::Array(items) => {
                let items: Vec<String> = items.iter().map(reference_value).collect();
                format!("[{}]", items.join(","))
            }
            Value::Object(map) => reference_key(map),
            other => other.to_string(),
        }
    }

    /// JSON values with few distinct keys (so nesting and dotted spellings collide) and every kind of leaf.
    fn arbitrary_params() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            proptest::num::f64::NORMAL.prop_map(Value::from),
            "[a-c\\\"\u{0}-\u{1f}é😀]{0,4}".prop_map(Value::String),
        ];
        let key = prop_oneof![Just("a"), Just("b"), Just("a.b"), Just("é\"q"), Just("")];
        leaf.prop_recursive(3, 24, 4, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                proptest::collection::vec((key.clone(), inner), 0..4).prop_map(|entries| {
                    Value::Object(
                        entries
                            .into_iter()
                            .map(|(k, v)| (k.to_string(), v))
                            .collect(),
                    )
                }),
            ]
        })
    }

    proptest::proptest! {
        /// A proposal's parameters survive a trip through JSON text with the same key, so the trial that
        /// reports them settles the proposal (serde_json's default float parser could be one ulp off).
        #[test]
        fn params_keys_survive_a_json_round_trip(x in proptest::num::f64::NORMAL, n in proptest::num::i64::ANY) {
            let params = obj(json!({"x": x, "n": n, "nested": {"y": x / 3.0}}));
            let text = serde_json::to_string(&params).unwrap();
            let back: Map<String, Value> = serde_json::from_str(&text).unwrap();
            proptest::prop_assert_eq!(params_key(&back), params_key(&params));
        }

        /// The key is the text of its specification for any parameters, colliding spellings included.
        #[test]
        fn params_key_matches_its_specification(params in arbitrary_params()) {
            let params = match params {
                Value::Object(map) => map,
                other => Map::from_iter([("p".to_string(), other)]),
            };
            proptest::prop_assert_eq!(params_key(&params), reference_key(&params));
        }

        /// `flatten` inserts every leaf under its dotted key, the later of two spellings winning.
        #[test]
        fn flatten_matches_its_specification(params in arbitrary_params()) {
            let params = match params {
                Value::Object(map) => map,
                other => Map::from_iter([("p".to_string(), other)]),
            };
            let mut expected = Map::new();
            reference_flatten("", &params, &mut expected);
            let flat = flatten(&params);
            proptest::prop_assert_eq!(
                flat.iter().collect::<Vec<_>>(),
                expected.iter().collect::<Vec<_>>()
            );
        }
    }
}
