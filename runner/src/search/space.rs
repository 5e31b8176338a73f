//! The validated search space: what each parameter may take, how its values are encoded for the
//! Parzen estimators, how they are drawn uniformly, and how they are written back as JSON.
//!
//! Values inside the sampler are plain `f64`s ("raw values"): the number itself for numeric
//! parameters, the index of the choice for categorical ones. Missing or out-of-domain values are
//! `NaN`.

use serde_json::{Map, Value};

use crate::rng::Rng;

/// Largest magnitude an integer bound may have, so that every integer is exact as an `f64`.
pub(crate) const MAX_EXACT_INT: i64 = 1 << 53;

/// Why a search space (or one of its parameters) was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parameter `{param}`: {reason}")]
pub struct SpaceError {
    /// The parameter at fault, or `space` when the whole specification is malformed.
    pub param: String,
    /// What is wrong, in words a user can act on.
    pub reason: String,
}

impl SpaceError {
    pub(crate) fn new(param: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            param: param.into(),
            reason: reason.into(),
        }
    }
}

/// An ordered, validated set of parameters. Build one with [`SearchSpace::parse`].
#[derive(Debug, Clone, PartialEq)]
pub struct SearchSpace {
    pub(crate) params: Vec<Param>,
}

/// One named parameter of a search space.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Param {
    pub(crate) name: String,
    pub(crate) domain: Domain,
}

/// The values one parameter may take. Constructed only by the parser, so always valid.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Domain {
    /// A float in `[lo, hi]`; on a log scale when `log`; on the grid `lo + n·step` when `step`.
    Float {
        lo: f64,
        hi: f64,
        log: bool,
        step: Option<f64>,
    },
    /// An integer in `[lo, hi]` on the grid `lo + n·step`; on a log scale when `log` (then step 1).
    Int {
        lo: i64,
        hi: i64,
        log: bool,
        step: i64,
    },
    /// One of the listed JSON values, kept exactly.
    Choice(Vec<Value>),
    /// Always this value.
    Const(Value),
}

/// How the sampler models one non-constant parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum DimSpec {
    /// A number in `[low, high]`, continuous when `step == 0`, else on the grid `low + n·step`.
    Numeric {
        low: f64,
        high: f64,
        step: f64,
        log: bool,
    },
    /// An index in `0..n`.
    Categorical { n: usize },
}

impl SearchSpace {
    /// Number of parameters, constants included.
    pub fn len(&self) -> usize {
        self.params.len()
    }

    /// Whether the space has no parameters (the parser never produces one).
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// Parameter names in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.params.iter().map(|p| p.name.as_str())
    }

    /// The space in the map dialect; [`SearchSpace::parse`] reads it back to an equal space.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        for p in &self.params {
            out.insert(p.name.clone(), p.domain.to_json());
        }
        Value::Object(out)
    }

    /// Whether `params` assigns every parameter a value inside its domain, with the JSON type the
    /// sampler would produce (a float for float parameters, an integer for int parameters, one of
    /// the exact choices, the constant). Extra keys are allowed.
    pub fn contains(&self, params: &Map<String, Value>) -> bool {
        self.params.iter().all(|p| {
            params
                .get(&p.name)
                .is_some_and(|v| p.domain.contains_exactly(v))
        })
    }

    /// The modelled (non-constant) parameters: their index in `params` and their model.
    pub(crate) fn dims(&self) -> Vec<(usize, DimSpec)> {
        self.params
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.domain.dim_spec().map(|d| (i, d)))
            .collect()
    }
}

impl Domain {
    fn to_json(&self) -> Value {
        let mut spec = Map::new();
        match self {
            Domain::Float { lo, hi, log, step } => match (log, step) {
                (true, _) => spec.insert("loguniform".into(), Value::from(vec![*lo, *hi])),
                (false, Some(q)) => spec.insert("quniform".into(), Value::from(vec![*lo, *hi, *q])),
                (false, None) => spec.insert("uniform".into(), Value::from(vec![*lo, *hi])),
            },
            Domain::Int { lo, hi, log, step } => {
                spec.insert("int".into(), Value::from(vec![*lo, *hi]));
                if *log {
                    spec.insert("log".into(), Value::Bool(true));
                }
                if *step != 1 {
                    spec.insert("step".into(), Value::from(*step))
                } else {
                    None
                }
            }
            Domain::Choice(choices) => spec.insert("choice".into(), Value::Array(choices.clone())),
            Domain::Const(v) => spec.insert("const".into(), v.clone()),
        };
        Value::Object(spec)
    }

    pub(crate) fn dim_spec(&self) -> Option<DimSpec> {
        match self {
            Domain::Float { lo, hi, log, step } => Some(DimSpec::Numeric {
                low: *lo,
                high: *hi,
                step: step.unwrap_or(0.0),
                log: *log,
            }),
            Domain::Int { lo, hi, log, step } => Some(DimSpec::Numeric {
                low: *lo as f64,
                high: *hi as f64,
                step: *step as f64,
                log: *log,
            }),
            Domain::Choice(choices) => Some(DimSpec::Categorical { n: choices.len() }),
            Domain::Const(_) => None,
        }
    }

    /// The raw value of a reported JSON value, or `NaN` when it is missing or out of domain.
    /// Grid parameters snap to the nearest grid point; int parameters need an integral number.
    pub(crate) fn encode(&self, value: Option<&Value>) -> f64 {
        let Some(value) = value else {
            return f64::NAN;
        };
        match self {
            Domain::Float { lo, hi, step, .. } => {
                let Some(x) = value.as_f64() else {
                    return f64::NAN;
                };
                let tol = 1e-12 * (hi - lo);
                if !(x >= lo - tol && x <= hi + tol) {
                    return f64::NAN;
                }
                match step {
                    Some(q) => snap(x, *lo, *hi, *q),
                    None => x.clamp(*lo, *hi),
                }
            }
            Domain::Int { lo, hi, step, .. } => {
                let Some(x) = value.as_f64() else {
                    return f64::NAN;
                };
                let (lo, hi) = (*lo as f64, *hi as f64);
                if x.fract() != 0.0 || x < lo || x > hi {
                    return f64::NAN;
                }
                snap(x, lo, hi, *step as f64)
            }
            Domain::Choice(choices) => choice_index(choices, value).map_or(f64::NAN, |i| i as f64),
            Domain::Const(_) => f64::NAN,
        }
    }

    /// The JSON value of a raw value produced by the sampler.
    pub(crate) fn decode(&self, raw: f64) -> Value {
        match self {
            Domain::Float { lo, hi, step, .. } => {
                let x = match step {
                    Some(q) => clean_grid_value(snap(raw, *lo, *hi, *q), *lo, *q),
                    None => raw,
                };
                Value::from(x.clamp(*lo, *hi))
            }
            Domain::Int { lo, hi, step, .. } => {
                let x = snap(raw, *lo as f64, *hi as f64, *step as f64);
                Value::from(x.round() as i64)
            }
            Domain::Choice(choices) => {
                let i = (raw.max(0.0) as usize).min(choices.len() - 1);
                choices[i].clone()
            }
            Domain::Const(v) => v.clone(),
        }
    }

    /// A uniform draw (log-uniform on log scales), as a raw value; `NaN` for constants.
    pub(crate) fn sample_uniform(&self, rng: &mut Rng) -> f64 {
        match self {
            Domain::Float { lo, hi, log, step } => match (log, step) {
                (true, _) => rng.uniform(lo.ln(), hi.ln()).exp().clamp(*lo, *hi),
                (false, Some(q)) => {
                    let n = grid_steps(*lo, *hi, *q);
                    lo + rng.below(n + 1) as f64 * q
                }
                (false, None) => rng.uniform(*lo, *hi),
            },
            Domain::Int { lo, hi, log, step } => {
                let (lo, hi) = (*lo as f64, *hi as f64);
                if *log {
                    let x = rng.uniform((lo - 0.5).ln(), (hi + 0.5).ln()).exp();
                    x.round().clamp(lo, hi)
                } else {
                    let n = grid_steps(lo, hi, *step as f64);
                    lo + rng.below(n + 1) as f64 * *step as f64
                }
            }
            Domain::Choice(choices) => rng.below(choices.len() as u64) as f64,
            Domain::Const(_) => f64::NAN,
        }
    }

    fn contains_exactly(&self, value: &Value) -> bool {
        match self {
            Domain::Float { lo, hi, step, .. } => {
                value.is_f64() && {
                    let x = value.as_f64().unwrap_or(f64::NAN);
                    x >= *lo
                        && x <= *hi
                        && step.is_none_or(|q| {
                            let n = (x - lo) / q;
                            (n - n.round()).abs() < 1e-6
                        })
                }
            }
            Domain::Int { lo, hi, step, .. } => value
                .as_i64()
                .is_some_and(|x| x >= *lo && x <= *hi && (x - lo) % step == 0),
            Domain::Choice(choices) => choices.contains(value),
            Domain::Const(v) => v == value,
        }
    }
}

/// Index of `value` among `choices`: an exact JSON match first, else a numerically equal number
/// (so a reported `1.0` still finds the choice `1`).
fn choice_index(choices: &[Value], value: &Value) -> Option<usize> {
    choices.iter().position(|c| c == value).or_else(|| {
        let x = value.as_f64()?;
        choices.iter().position(|c| c.as_f64() == Some(x))
    })
}

/// Number of whole steps of size `step` from `lo` that stay within `hi`.
pub(crate) fn grid_steps(lo: f64, hi: f64, step: f64) -> u64 {
    ((hi - lo) / step + 1e-9).floor().max(0.0) as u64
}

/// The grid point `lo + n·step` nearest to `x`, kept within `[lo, hi]`.
fn snap(x: f64, lo: f64, hi: f64, step: f64) -> f64 {
    let n = ((x - lo) / step)
        .round()
        .clamp(0.0, grid_steps(lo, hi, step) as f64);
    (lo + n * step).min(hi)
}

/// Digits after the decimal point in the shortest representation of `x`, if at most 15.
fn decimals(x: f64) -> Option<usize> {
    let s = x.abs().to_string();
    let d = s.split_once('.').map_or(0, |(_, frac)| frac.len());
    (d <= 15).then_some(d)
}

/// Rounds a grid value to the decimals of `lo` and `step`, so that `0.1·3` reads `0.3`.
pub(crate) fn clean_grid_value(x: f64, lo: f64, step: f64) -> f64 {
    match (decimals(lo), decimals(step)) {
        (Some(a), Some(b)) => format!("{x:.*}", a.max(b)).parse().unwrap_or(x),
        _ => x,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn grid_values_are_written_cleanly() {
        assert_eq!(clean_grid_value(0.1 * 3.0, 0.0, 0.1), 0.3);
        assert_eq!(clean_grid_value(1.0 + 7.0 * 0.05, 1.0, 0.05), 1.35);
        assert_eq!(clean_grid_value(2.5, 0.5, 1.0), 2.5);
    }

    #[test]
    fn reported_values_encode_to_raw_values_or_nan() {
        let lr = Domain::Float {
            lo: 1e-5,
            hi: 1e-1,
            log: true,
            step: None,
        };
        assert_eq!(lr.encode(Some(&json!(1e-3))), 1e-3);
        assert!(lr.encode(Some(&json!(0.5))).is_nan());
        assert!(lr.encode(Some(&json!("0.001"))).is_nan());
        assert!(lr.encode(None).is_nan());

        let layers = Domain::Int {
            lo: 1,
            hi: 9,
            log: false,
            step: 2,
        };
        assert_eq!(layers.encode(Some(&json!(5))), 5.0);
        assert_eq!(layers.encode(Some(&json!(5.0))), 5.0);
        assert_eq!(layers.encode(Some(&json!(4))), 5.0, "snaps to the grid");
        assert!(layers.encode(Some(&json!(4.5))).is_nan());
        assert!(layers.encode(Some(&json!(11))).is_nan());

        let act = Domain::Choice(vec![json!("relu"), json!(1), json!(null)]);
        assert_eq!(act.encode(Some(&json!(null))), 2.0);
        assert_eq!(act.encode(Some(&json!(1.0))), 1.0);
        assert!(act.encode(Some(&json!("gelu"))).is_nan());
    }

    #[test]
    fn decoded_values_have_the_parameter_json_type() {
        let q = Domain::Float {
            lo: 0.0,
            hi: 1.0,
            log: false,
            step: Some(0.1),
        };
        assert_eq!(q.decode(0.31), json!(0.3));
        let i = Domain::Int {
            lo: -3,
            hi: 3,
            log: false,
            step: 1,
        };
        assert_eq!(i.decode(1.2), json!(1));
        assert!(i.decode(1.2).is_i64());
        let c = Domain::Choice(vec![json!(true), json!([1, 2])]);
        assert_eq!(c.decode(1.0), json!([1, 2]));
    }
}
