//! Reading search spaces from JSON, in the map dialect (`{"lr": {"loguniform": [1e-5, 1e-1]}}`)
//! and the list dialect (`[{"name": "lr", "type": "float", "low": 1e-5, "high": 1e-1, "log": true}]`).

use serde_json::{Map, Value};

use super::space::{
    Domain, MAX_EXACT_INT, Param, SearchSpace, SpaceError, clean_grid_value, grid_steps,
};

/// Most parameters a space may have.
pub const MAX_PARAMS: usize = 256;
/// Most choices a categorical parameter may have.
pub const MAX_CHOICES: usize = 1024;
/// Longest parameter name (MLflow's limit for parameter keys).
pub const MAX_NAME_LEN: usize = 250;

impl SearchSpace {
    /// Parses and validates a search space in either dialect.
    ///
    /// Every error names the parameter at fault (or `space` when the whole value is malformed)
    /// and says what is wrong.
    pub fn parse(v: &Value) -> Result<SearchSpace, SpaceError> {
        let params = match v {
            Value::Object(map) => parse_map_dialect(map)?,
            Value::Array(items) => parse_list_dialect(items)?,
            _ => {
                return Err(SpaceError::new(
                    "space",
                    "must be an object of parameter specs or a list of parameter objects",
                ));
            }
        };
        if params.is_empty() {
            return Err(SpaceError::new(
                "space",
                "must define at least one parameter",
            ));
        }
        if params.len() > MAX_PARAMS {
            return Err(SpaceError::new(
                "space",
                format!(
                    "has {} parameters; at most {MAX_PARAMS} are allowed",
                    params.len()
                ),
            ));
        }
        Ok(SearchSpace { params })
    }
}

fn parse_map_dialect(map: &Map<String, Value>) -> Result<Vec<Param>, SpaceError> {
    let mut params = Vec::with_capacity(map.len().min(MAX_PARAMS + 1));
    for (name, spec) in map {
        check_name(name)?;
        let err = |reason: &str| SpaceError::new(name.as_str(), reason);
        let Value::Object(spec) = spec else {
            return Err(err(
                "spec must be an object such as {\"uniform\": [0, 1]} or {\"choice\": [..]}",
            ));
        };
        let kinds = [
            "choice",
            "uniform",
            "loguniform",
            "quniform",
            "int",
            "const",
        ];
        let mut present = kinds.iter().filter(|k| spec.contains_key(**k));
        let Some(kind) = present.next() else {
            return Err(err(
                "spec needs one of choice, uniform, loguniform, quniform, int, const",
            ));
        };
        if let Some(other) = present.next() {
            return Err(err(&format!("spec has both `{kind}` and `{other}`")));
        }
        let allowed_extra: &[&str] = if *kind == "int" {
            &["log", "step"]
        } else {
            &[]
        };
        if let Some(key) = spec
            .keys()
            .find(|k| k.as_str() != *kind && !allowed_extra.contains(&k.as_str()))
        {
            return Err(err(&format!("unknown key `{key}` in a `{kind}` spec")));
        }
        let arg = &spec[*kind];
        let domain = match *kind {
            "choice" => choices(name, arg)?,
            "const" => Domain::Const(arg.clone()),
            "uniform" => {
                let [lo, hi] = numbers::<2>(name, kind, arg)?;
                float_domain(name, lo, hi, false, None)?
            }
            "loguniform" => {
                let [lo, hi] = numbers::<2>(name, kind, arg)?;
                float_domain(name, lo, hi, true, None)?
            }
            "quniform" => {
                let [lo, hi, q] = numbers::<3>(name, kind, arg)?;
                float_domain(name, lo, hi, false, Some(q))?
            }
            _ => {
                let Some([lo, hi]) = arg
                    .as_array()
                    .and_then(|a| <[Value; 2]>::try_from(a.clone()).ok())
                else {
                    return Err(err("int needs [lo, hi]"));
                };
                let log = flag(name, spec.get("log"))?;
                let step = match spec.get("step") {
                    None => 1,
                    Some(s) => integer(name, "step", s)?,
                };
                int_domain(
                    name,
                    integer(name, "lo", &lo)?,
                    integer(name, "hi", &hi)?,
                    log,
                    step,
                )?
            }
        };
        params.push(Param {
            name: name.clone(),
            domain,
        });
    }
    Ok(params)
}

fn parse_list_dialect(items: &[Value]) -> Result<Vec<Param>, SpaceError> {
    let mut params: Vec<Param> = Vec::with_capacity(items.len().min(MAX_PARAMS + 1));
    for (i, item) in items.iter().enumerate() {
        let Value::Object(obj) = item else {
            return Err(SpaceError::new(
                "space",
                format!("item {i} must be an object with name and type"),
            ));
        };
        let name = match obj.get("name") {
            Some(Value::String(s)) => s.as_str(),
            _ => {
                return Err(SpaceError::new(
                    "space",
                    format!("item {i} needs a string `name`"),
                ));
            }
        };
        check_name(name)?;
        if params.iter().any(|p| p.name == name) {
            return Err(SpaceError::new(name, "is defined more than once"));
        }
        let err = |reason: String| SpaceError::new(name, reason);
        let known = ["name", "type", "low", "high", "choices", "log", "step"];
        if let Some(key) = obj.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(err(format!("unknown key `{key}`")));
        }
        let ty = match obj.get("type") {
            Some(Value::String(t)) => t.as_str(),
            _ => return Err(err("needs `type`: float, int or categorical".into())),
        };
        let bound = |key: &str| {
            obj.get(key)
                .ok_or_else(|| err(format!("{ty} needs `{key}`")))
        };
        let log = flag(name, obj.get("log"))?;
        let domain = match ty {
            "float" => {
                let lo = number(name, "low", bound("low")?)?;
                let hi = number(name, "high", bound("high")?)?;
                let step = obj
                    .get("step")
                    .filter(|s| !s.is_null())
                    .map(|s| number(name, "step", s))
                    .transpose()?;
                if log && step.is_some() {
                    return Err(err("a log-scale float cannot have a step".into()));
                }
                float_domain(name, lo, hi, log, step)?
            }
            "int" => {
                let lo = integer(name, "low", bound("low")?)?;
                let hi = integer(name, "high", bound("high")?)?;
                let step = match obj.get("step").filter(|s| !s.is_null()) {
                    None => 1,
                    Some(s) => integer(name, "step", s)?,
                };
                int_domain(name, lo, hi, log, step)?
            }
            "categorical" => {
                for key in ["low", "high", "step"] {
                    if obj.get(key).is_some_and(|v| !v.is_null()) {
                        return Err(err(format!("categorical takes `choices`, not `{key}`")));
                    }
                }
                if log {
                    return Err(err("categorical cannot be log-scale".into()));
                }
                choices(name, bound("choices")?)?
            }
            other => {
                return Err(err(format!(
                    "unknown type `{other}`; expected float, int or categorical"
                )));
            }
        };
        params.push(Param {
            name: name.to_owned(),
            domain,
        });
    }
    Ok(params)
}

fn check_name(name: &str) -> Result<(), SpaceError> {
    if name.is_empty() {
        return Err(SpaceError::new(
            "space",
            "parameter names must not be empty",
        ));
    }
    if name.chars().count() > MAX_NAME_LEN {
        return Err(SpaceError::new(
            name,
            format!("name is longer than {MAX_NAME_LEN} characters"),
        ));
    }
    let ok = |c: char| c.is_ascii_alphanumeric() || "_-. /:".contains(c);
    if !name.chars().all(ok) {
        return Err(SpaceError::new(
            name,
            "name may only contain letters, digits, spaces and _ - . / :",
        ));
    }
    Ok(())
}

fn numbers<const N: usize>(name: &str, kind: &str, arg: &Value) -> Result<[f64; N], SpaceError> {
    let shape = match N {
        2 => "[lo, hi]",
        _ => "[lo, hi, q]",
    };
    let items = arg
        .as_array()
        .filter(|a| a.len() == N)
        .ok_or_else(|| SpaceError::new(name, format!("{kind} needs {shape}")))?;
    let mut out = [0.0; N];
    for (slot, v) in out.iter_mut().zip(items) {
        *slot = number(name, kind, v)?;
    }
    Ok(out)
}

fn number(name: &str, what: &str, v: &Value) -> Result<f64, SpaceError> {
    match v.as_f64() {
        Some(x) if x.is_finite() => Ok(x),
        _ => Err(SpaceError::new(
            name,
            format!("{what} needs finite numbers, got {v}"),
        )),
    }
}

fn integer(name: &str, what: &str, v: &Value) -> Result<i64, SpaceError> {
    let err = || SpaceError::new(name, format!("int {what} must be an integer, got {v}"));
    let x = match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
                .map(|f| f as i64)
        }),
        _ => None,
    }
    .ok_or_else(err)?;
    // `unsigned_abs`: `i64::MIN.abs()` overflows (a panic in debug builds, a negative number in release).
    if x.unsigned_abs() > MAX_EXACT_INT.unsigned_abs() {
        return Err(SpaceError::new(
            name,
            format!("int {what} must lie within ±2^53"),
        ));
    }
    Ok(x)
}

fn flag(name: &str, v: Option<&Value>) -> Result<bool, SpaceError> {
    match v {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(SpaceError::new(
            name,
            format!("`log` must be true or false, got {other}"),
        )),
    }
}

fn choices(name: &str, arg: &Value) -> Result<Domain, SpaceError> {
    let Some(items) = arg.as_array() else {
        return Err(SpaceError::new(name, "choices must be a list"));
    };
    if items.is_empty() {
        return Err(SpaceError::new(name, "choices must not be empty"));
    }
    if items.len() > MAX_CHOICES {
        return Err(SpaceError::new(
            name,
            format!(
                "has {} choices; at most {MAX_CHOICES} are allowed",
                items.len()
            ),
        ));
    }
    for (i, c) in items.iter().enumerate() {
        if items[..i].contains(c) {
            return Err(SpaceError::new(name, format!("choice {c} is listed twice")));
        }
    }
    Ok(Domain::Choice(items.clone()))
}

fn float_domain(
    name: &str,
    lo: f64,
    hi: f64,
    log: bool,
    step: Option<f64>,
) -> Result<Domain, SpaceError> {
    let kind = match (log, step) {
        (true, _) => "loguniform",
        (false, Some(_)) => "quniform",
        (false, None) => "uniform",
    };
    if lo >= hi {
        return Err(SpaceError::new(name, format!("{kind} needs lo < hi")));
    }
    if log && lo <= 0.0 {
        return Err(SpaceError::new(name, format!("{kind} needs lo > 0")));
    }
    if !(hi - lo).is_finite() {
        return Err(SpaceError::new(
            name,
            format!("{kind} range hi - lo is too large for a float"),
        ));
    }
    let hi = match step {
        None => hi,
        Some(q) => {
            if q <= 0.0 {
                return Err(SpaceError::new(name, format!("{kind} needs q > 0")));
            }
            if (hi - lo) / q > MAX_EXACT_INT as f64 {
                return Err(SpaceError::new(
                    name,
                    format!("{kind} has more than 2^53 grid points; use a larger q or uniform"),
                ));
            }
            if grid_steps(lo, hi, q) == 0 {
                return Err(SpaceError::new(name, format!("{kind} needs q <= hi - lo")));
            }
            // The highest grid point not above hi, written cleanly.
            clean_grid_value(lo + grid_steps(lo, hi, q) as f64 * q, lo, q).min(hi)
        }
    };
    Ok(Domain::Float { lo, hi, log, step })
}

fn int_domain(name: &str, lo: i64, hi: i64, log: bool, step: i64) -> Result<Domain, SpaceError> {
    if lo >= hi {
        return Err(SpaceError::new(name, "int needs lo < hi"));
    }
    if log && lo <= 0 {
        return Err(SpaceError::new(name, "a log-scale int needs lo > 0"));
    }
    if step <= 0 {
        return Err(SpaceError::new(name, "int step must be positive"));
    }
    if log && step != 1 {
        return Err(SpaceError::new(name, "a log-scale int needs step 1"));
    }
    if step > hi - lo {
        return Err(SpaceError::new(name, "int step must not exceed hi - lo"));
    }
    // The highest grid point not above hi.
    let hi = lo + (hi - lo) / step * step;
    Ok(Domain::Int { lo, hi, log, step })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn error_of(v: Value) -> String {
        SearchSpace::parse(&v).unwrap_err().to_string()
    }

    fn domain_of(v: Value) -> Domain {
        let space = SearchSpace::parse(&v).unwrap();
        assert_eq!(space.len(), 1);
        space.params[0].domain.clone()
    }

    #[test]
    fn the_extreme_i64_bounds_are_refused_not_overflowed() {
        for space in [
            json!({"x": {"int": [i64::MIN, i64::MAX]}}),
            json!({"x": {"int": [i64::MIN, 0]}}),
            json!([{"name": "x", "type": "int", "low": i64::MIN, "high": 0}]),
        ] {
            let e = SearchSpace::parse(&space).unwrap_err();
            assert_eq!(e.param, "x", "{space}");
        }
    }

    #[test]
    fn the_runner_map_dialect_is_read_in_order_with_dotted_names() {
        let space = SearchSpace::parse(&json!({
            "lr": {"loguniform": [1e-5, 1e-1]},
            "head": {"choice": ["kgam", "irope"]},
            "controller.smooth": {"uniform": [0, 1]},
            "curation.kernel_bw": {"uniform": [0.1, 0.9]},
        }))
        .unwrap();
        let names: Vec<&str> = space.names().collect();
        assert_eq!(
            names,
            ["lr", "head", "controller.smooth", "curation.kernel_bw"]
        );
    }

    #[test]
    fn choices_keep_their_json_values_exactly() {
        let d = domain_of(json!({"x": {"choice": [1, 2.5, true, "a", null, [1], {"k": 1}]}}));
        let Domain::Choice(c) = d else {
            panic!("not a choice")
        };
        assert!(c[0].is_i64() && c[1].is_f64() && c[2].is_boolean() && c[4].is_null());
    }

    #[test]
    fn int_specs_take_log_and_step() {
        assert_eq!(
            domain_of(json!({"n": {"int": [1, 1024], "log": true}})),
            Domain::Int {
                lo: 1,
                hi: 1024,
                log: true,
                step: 1
            }
        );
        assert_eq!(
            domain_of(json!({"n": {"int": [0, 10], "step": 4}})),
            Domain::Int {
                lo: 0,
                hi: 8,
                log: false,
                step: 4
            },
            "hi is lowered to the last grid point"
        );
    }

    #[test]
    fn quniform_lowers_hi_to_a_clean_grid_point() {
        assert_eq!(
            domain_of(json!({"d": {"quniform": [0, 1, 0.3]}})),
            Domain::Float {
                lo: 0.0,
                hi: 0.9,
                log: false,
                step: Some(0.3)
            }
        );
    }

    #[test]
    fn a_single_step_quniform_survives_rounding_of_its_bounds() {
        // hi − lo is a hair below q in binary: -0.28 − -0.29 = 0.00999…
        let spec = json!({"a": {"quniform": [-0.29, -0.28, 0.01]}});
        let space = SearchSpace::parse(&spec).unwrap();
        assert_eq!(space.to_json(), spec);
    }

    #[test]
    fn the_list_dialect_reads_float_int_and_categorical() {
        let space = SearchSpace::parse(&json!([
            {"name": "lr", "type": "float", "low": 1e-5, "high": 1e-1, "log": true},
            {"name": "drop", "type": "float", "low": 0, "high": 0.5, "step": 0.1},
            {"name": "layers", "type": "int", "low": 1, "high": 8},
            {"name": "act", "type": "categorical", "choices": ["relu", "gelu"]},
        ]))
        .unwrap();
        let expected = SearchSpace::parse(&json!({
            "lr": {"loguniform": [1e-5, 1e-1]},
            "drop": {"quniform": [0, 0.5, 0.1]},
            "layers": {"int": [1, 8]},
            "act": {"choice": ["relu", "gelu"]},
        }))
        .unwrap();
        assert_eq!(space, expected);
    }

    #[test]
    fn loguniform_needs_a_positive_lower_bound() {
        assert_eq!(
            error_of(json!({"lr": {"loguniform": [0, 1]}})),
            "parameter `lr`: loguniform needs lo > 0"
        );
        assert_eq!(
            error_of(json!([{"name": "lr", "type": "float", "low": -1, "high": 1, "log": true}])),
            "parameter `lr`: loguniform needs lo > 0"
        );
    }

    #[test]
    fn bounds_must_be_finite_ordered_numbers() {
        assert!(error_of(json!({"x": {"uniform": [1, 1]}})).contains("lo < hi"));
        assert!(error_of(json!({"x": {"uniform": [2, 1]}})).contains("lo < hi"));
        assert!(error_of(json!({"x": {"uniform": ["0", 1]}})).contains("finite numbers"));
        assert!(error_of(json!({"x": {"uniform": [0]}})).contains("[lo, hi]"));
        assert!(error_of(json!({"x": {"uniform": [0, null]}})).contains("finite numbers"));
        assert!(error_of(json!({"n": {"int": [1.5, 3]}})).contains("must be an integer"));
        assert!(error_of(json!({"n": {"int": [0, 1e17]}})).contains("2^53"));
        assert!(error_of(json!({"n": {"int": [3, 3]}})).contains("lo < hi"));
    }

    #[test]
    fn ranges_must_stay_representable() {
        assert!(error_of(json!({"x": {"uniform": [-1e308, 1e308]}})).contains("too large"));
        assert!(
            error_of(json!({"q": {"quniform": [0, 1e10, 1e-10]}})).contains("2^53 grid points")
        );
    }

    #[test]
    fn steps_must_be_positive() {
        assert!(error_of(json!({"q": {"quniform": [0, 1, 0]}})).contains("q > 0"));
        assert!(error_of(json!({"q": {"quniform": [0, 1, -0.1]}})).contains("q > 0"));
        assert!(error_of(json!({"q": {"quniform": [0, 1, 2]}})).contains("q <= hi - lo"));
        assert!(error_of(json!({"n": {"int": [0, 9], "step": 0}})).contains("positive"));
        assert!(error_of(json!({"n": {"int": [1, 9], "step": 2, "log": true}})).contains("step 1"));
    }

    #[test]
    fn choices_must_be_a_non_empty_list_of_distinct_values_within_the_limit() {
        assert!(error_of(json!({"c": {"choice": []}})).contains("must not be empty"));
        assert!(error_of(json!({"c": {"choice": "ab"}})).contains("must be a list"));
        assert!(error_of(json!({"c": {"choice": [1, 1]}})).contains("listed twice"));
        let many: Vec<usize> = (0..=MAX_CHOICES).collect();
        assert!(error_of(json!({"c": {"choice": many}})).contains("at most 1024"));
    }

    #[test]
    fn malformed_specs_name_the_parameter() {
        assert_eq!(
            error_of(json!({"x": [0, 1]})),
            "parameter `x`: spec must be an object such as {\"uniform\": [0, 1]} or {\"choice\": [..]}"
        );
        assert!(error_of(json!({"x": {"normal": [0, 1]}})).contains("needs one of"));
        assert!(error_of(json!({"x": {"uniform": [0, 1], "choice": [1]}})).contains("both"));
        assert!(
            error_of(json!({"x": {"uniform": [0, 1], "log": true}})).contains("unknown key `log`")
        );
        assert!(error_of(json!({"x": {"int": [0, 1], "log": "yes"}})).contains("true or false"));
    }

    #[test]
    fn the_whole_space_must_be_an_object_or_list_of_at_most_256_parameters() {
        assert_eq!(
            error_of(json!(3)),
            "parameter `space`: must be an object of parameter specs or a list of parameter objects"
        );
        assert!(error_of(json!({})).contains("at least one"));
        assert!(error_of(json!([])).contains("at least one"));
        let big: Map<String, Value> = (0..=MAX_PARAMS)
            .map(|i| (format!("p{i}"), json!({"const": i})))
            .collect();
        assert!(error_of(Value::Object(big)).contains("at most 256"));
    }

    #[test]
    fn list_items_need_a_unique_name_and_a_known_type() {
        assert!(error_of(json!([{"type": "float"}])).contains("item 0 needs a string `name`"));
        assert!(error_of(json!([1])).contains("item 0 must be an object"));
        assert_eq!(
            error_of(json!([
                {"name": "a", "type": "int", "low": 0, "high": 3},
                {"name": "a", "type": "int", "low": 0, "high": 3},
            ])),
            "parameter `a`: is defined more than once"
        );
        assert!(error_of(json!([{"name": "a", "type": "bool"}])).contains("unknown type `bool`"));
        assert!(
            error_of(json!([{"name": "a", "type": "float", "low": 0}])).contains("needs `high`")
        );
        assert!(
            error_of(json!([{"name": "a", "type": "categorical", "choices": [1], "low": 0}]))
                .contains("not `low`")
        );
        assert!(
            error_of(json!([{"name": "a", "type": "int", "low": 0, "high": 3, "lo": 1}]))
                .contains("unknown key `lo`")
        );
    }

    #[test]
    fn names_follow_mlflow_key_rules() {
        assert!(error_of(json!({"": {"const": 1}})).contains("must not be empty"));
        assert!(error_of(json!({"a;b": {"const": 1}})).contains("may only contain"));
        let long = "x".repeat(MAX_NAME_LEN + 1);
        assert!(error_of(json!({ long: {"const": 1} })).contains("longer than 250"));
        assert!(SearchSpace::parse(&json!({"model/enc.dim_1:x y-z": {"const": 1}})).is_ok());
    }

    #[test]
    fn to_json_reads_back_to_the_same_space() {
        let spec = json!({
            "a": {"uniform": [-1.5, 2]},
            "b": {"loguniform": [1e-6, 1]},
            "c": {"quniform": [0.05, 1, 0.05]},
            "d": {"int": [2, 64], "log": true},
            "e": {"int": [-10, 10], "step": 5},
            "f": {"choice": [1, "x", null]},
            "g": {"const": {"nested": [1, 2]}},
        });
        let space = SearchSpace::parse(&spec).unwrap();
        assert_eq!(SearchSpace::parse(&space.to_json()).unwrap(), space);
    }
}
