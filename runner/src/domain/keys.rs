//! MLflow key rules for metric and parameter names, and canonical parameter keys.

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
    let mut out = Map::new();
    flatten_into("", map, &mut out);
    out
}

fn flatten_into(prefix: &str, map: &Map<String, Value>, out: &mut Map<String, Value>) {
    for (k, v) in map {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Object(inner) if !inner.is_empty() => flatten_into(&key, inner, out),
            other => {
                out.insert(key, other.clone());
            }
        }
    }
}

/// A canonical text form of a parameter set, equal for equal parameters however they were encoded
/// (key order, nesting vs dotted keys, `1` vs `1.0`). Used to match trials to pending proposals.
pub fn params_key(params: &Map<String, Value>) -> String {
    let flat = flatten(params);
    let mut entries: Vec<(&String, &Value)> = flat.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = String::from("{");
    for (i, (k, v)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&Value::String(k.clone()).to_string());
        out.push(':');
        canonical_value(v, &mut out);
    }
    out.push('}');
    out
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

fn canonical_value(v: &Value, out: &mut String) {
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.is_finite() => out.push_str(&format!("{f:e}")),
            _ => out.push_str(&n.to_string()),
        },
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => out.push_str(&params_key(map)),
        other => out.push_str(&other.to_string()),
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
    }
}
