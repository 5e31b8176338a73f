//! Training parameters: parsing a free-form `params` object into a checked [`TrainSpec`].
//!
//! Every field has a default, so any object (even one made for a different model) trains a small
//! real network; keys we do not know become warnings, values we cannot use become a [`ParamError`]
//! naming the field. Numbers may arrive as JSON numbers or numeric strings (tracking systems store
//! parameters as strings), and integers may arrive as integral floats (search spaces are float lists).

use serde_json::{Map, Value, json};

use super::activation::Activation;

/// Most levels a candidate may have.
pub const MAX_LEVELS: usize = 16;
/// Most units in one level.
pub const MAX_UNITS_PER_LEVEL: usize = 64;
/// Widest dense layer of a unit.
pub const MAX_NEURONS_PER_UNIT: usize = 4096;
/// Most epochs one training may run.
pub const MAX_EPOCHS: usize = 10_000;
/// Largest mini-batch.
pub const MAX_BATCH_SIZE: usize = 65_536;

/// Gradient-based optimiser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Optimizer {
    /// Stochastic gradient descent with (heavy-ball) momentum; weight decay is an L2 term.
    Sgd,
    /// Adam (betas 0.9/0.999, eps 1e-8); weight decay is an L2 term added to the gradient.
    Adam,
    /// Adam with decoupled weight decay.
    AdamW,
}

impl Optimizer {
    /// Canonical lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Optimizer::Sgd => "sgd",
            Optimizer::Adam => "adam",
            Optimizer::AdamW => "adamw",
        }
    }

    /// Parses a name case-insensitively.
    pub fn parse(name: &str) -> Option<Optimizer> {
        match name.trim().to_ascii_lowercase().as_str() {
            "sgd" => Some(Optimizer::Sgd),
            "adam" => Some(Optimizer::Adam),
            "adamw" | "adam_w" => Some(Optimizer::AdamW),
            _ => None,
        }
    }
}

/// A fully checked training specification: the network's shape and wiring parameters plus the
/// optimisation settings. Build it with [`TrainSpec::from_params`] or start from `default()`.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainSpec {
    /// Number of hidden levels (1..=16). Default 2.
    pub levels: usize,
    /// Units in each level, one entry per level (1..=64 each). Default 2.
    pub units_per_level: Vec<usize>,
    /// Width of every unit's dense layer, one entry per level (1..=4096 each). Default 32.
    pub neurons_per_unit: Vec<usize>,
    /// Activation after each unit's dense layer. Default relu.
    pub activation: Activation,
    /// Probability that a unit also reads each unit to its left in the same level. Default 0.25.
    pub p_lateral_connection: f64,
    /// Probability that each input draw of a unit comes from the immediately preceding level rather
    /// than from any earlier level (the input counts as level 0). Default 0.7; 1.0 gives a chain.
    pub predecessor_affinity: f64,
    /// Dropout rate on each unit's concatenated input during training, in [0, 1). Default 0.
    pub dropout: f64,
    /// Layer normalisation on the concatenated input of each unit that reads at least one other unit
    /// (units reading only the standardised features skip it). Default off.
    pub normalization: bool,
    /// Step size, in (0, 10]. Default 0.01. Alias `lr`.
    pub learning_rate: f64,
    /// Passes over the training split (1..=10000). Default 30.
    pub epochs: usize,
    /// Mini-batch size (1..=65536). Default 32.
    pub batch_size: usize,
    /// Optimiser. Default adam.
    pub optimizer: Optimizer,
    /// Momentum for sgd, in [0, 1). Default 0.9.
    pub momentum: f64,
    /// Weight decay on dense weights (not biases or norm gains), in [0, 1]. Default 0.01 for adamw,
    /// 0 otherwise.
    pub weight_decay: f64,
    /// Early stopping: stop after this many epochs without a lower validation loss and restore the
    /// best weights. Default none (run every epoch, keep the last weights).
    pub patience: Option<usize>,
    /// Seed for wiring, initialisation, shuffling and dropout. Default 0.
    pub seed: u64,
    /// Seed of the train/validation split, kept apart from `seed` so candidates with different
    /// seeds are scored on the same validation rows. Default 0.
    pub split_seed: u64,
    /// Share of rows held out for validation, in [0.05, 0.5]. Default 0.2.
    pub validation_fraction: f64,
}

impl Default for TrainSpec {
    fn default() -> Self {
        TrainSpec {
            levels: 2,
            units_per_level: vec![2, 2],
            neurons_per_unit: vec![32, 32],
            activation: Activation::Relu,
            p_lateral_connection: 0.25,
            predecessor_affinity: 0.7,
            dropout: 0.0,
            normalization: false,
            learning_rate: 0.01,
            epochs: 30,
            batch_size: 32,
            optimizer: Optimizer::Adam,
            momentum: 0.9,
            weight_decay: 0.0,
            patience: None,
            seed: 0,
            split_seed: 0,
            validation_fraction: 0.2,
        }
    }
}

/// A parameter value that cannot be used; `Display` names the field, e.g.
/// "`epochs` must be a positive integer, got -3".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}` {reason}")]
pub struct ParamError {
    /// The offending key as the caller spelled it.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ParamError {
    fn new(field: &str, reason: impl Into<String>) -> Self {
        ParamError {
            field: field.to_string(),
            reason: reason.into(),
        }
    }
}

/// Keys [`TrainSpec::from_params`] understands.
pub const KNOWN_KEYS: [&str; 19] = [
    "levels",
    "units_per_level",
    "neurons_per_unit",
    "activation",
    "p_lateral_connection",
    "predecessor_affinity",
    "dropout",
    "normalization",
    "learning_rate",
    "lr",
    "epochs",
    "batch_size",
    "optimizer",
    "momentum",
    "weight_decay",
    "patience",
    "seed",
    "split_seed",
    "validation_fraction",
];

impl TrainSpec {
    /// Parses a params object. Returns the spec and one warning per unknown key.
    ///
    /// `units_per_level` and `neurons_per_unit` take an integer (used for every level) or an array
    /// with one entry per level; when `levels` is absent, an array's length sets it.
    pub fn from_params(
        params: &Map<String, Value>,
    ) -> Result<(TrainSpec, Vec<String>), ParamError> {
        let mut spec = TrainSpec::default();
        let mut warnings = Vec::new();
        let mut levels = None;
        let mut units = None;
        let mut neurons = None;
        let mut weight_decay = None;
        let mut learning_rate: Option<(&str, f64)> = None;

        for (key, value) in params {
            let k = key.as_str();
            match k {
                "levels" => levels = Some(int_in(k, value, 1, MAX_LEVELS as u64)? as usize),
                "units_per_level" => units = Some(int_list(k, value, MAX_UNITS_PER_LEVEL)?),
                "neurons_per_unit" => neurons = Some(int_list(k, value, MAX_NEURONS_PER_UNIT)?),
                "activation" => {
                    let name = string(k, value)?;
                    spec.activation = Activation::parse(name).ok_or_else(|| {
                        let all: Vec<_> = Activation::ALL.iter().map(|a| a.name()).collect();
                        ParamError::new(
                            k,
                            format!("must be one of {}, got {}", all.join(", "), quoted(name)),
                        )
                    })?;
                }
                "p_lateral_connection" => spec.p_lateral_connection = prob(k, value, true)?,
                "predecessor_affinity" => spec.predecessor_affinity = prob(k, value, true)?,
                "dropout" => spec.dropout = prob(k, value, false)?,
                "normalization" => spec.normalization = switch(k, value)?,
                "learning_rate" | "lr" => {
                    let lr = float_in(k, value, 0.0, 10.0, false)?;
                    if let Some((other, previous)) = learning_rate
                        && previous != lr
                    {
                        return Err(ParamError::new(
                            k,
                            format!("conflicts with `{other}`; give only one of them"),
                        ));
                    }
                    learning_rate = Some((k, lr));
                }
                "epochs" => spec.epochs = int_in(k, value, 1, MAX_EPOCHS as u64)? as usize,
                "batch_size" => {
                    spec.batch_size = int_in(k, value, 1, MAX_BATCH_SIZE as u64)? as usize
                }
                "optimizer" => {
                    let name = string(k, value)?;
                    spec.optimizer = Optimizer::parse(name).ok_or_else(|| {
                        ParamError::new(
                            k,
                            format!("must be one of sgd, adam, adamw, got {}", quoted(name)),
                        )
                    })?;
                }
                "momentum" => spec.momentum = prob(k, value, false)?,
                "weight_decay" => weight_decay = Some(float_in(k, value, 0.0, 1.0, true)?),
                "patience" => {
                    spec.patience = match value {
                        Value::Null => None,
                        v => Some(int_in(k, v, 1, MAX_EPOCHS as u64)? as usize),
                    }
                }
                "seed" => spec.seed = int_in(k, value, 0, u64::MAX)?,
                "split_seed" => spec.split_seed = int_in(k, value, 0, u64::MAX)?,
                "validation_fraction" => {
                    let f = float_in(k, value, 0.05, 0.5, true)?;
                    spec.validation_fraction = f;
                }
                _ => warnings.push(format!("unknown parameter {} ignored", quoted(key))),
            }
        }

        if let Some((_, lr)) = learning_rate {
            spec.learning_rate = lr;
        }
        spec.weight_decay = weight_decay.unwrap_or(match spec.optimizer {
            Optimizer::AdamW => 0.01,
            _ => 0.0,
        });
        let levels = levels
            .or_else(|| longest_list(&units, &neurons))
            .unwrap_or(spec.levels);
        spec.levels = levels;
        spec.units_per_level = broadcast("units_per_level", units, levels, 2)?;
        spec.neurons_per_unit = broadcast("neurons_per_unit", neurons, levels, 32)?;
        Ok((spec, warnings))
    }

    /// Checks a spec built by hand (its fields are public) against the same rules as
    /// [`TrainSpec::from_params`], including one size entry per level.
    pub fn validate(&self) -> Result<(), ParamError> {
        for (field, list) in [
            ("units_per_level", &self.units_per_level),
            ("neurons_per_unit", &self.neurons_per_unit),
        ] {
            if list.len() != self.levels {
                return Err(ParamError::new(
                    field,
                    format!("has {} entries but `levels` is {}", list.len(), self.levels),
                ));
            }
        }
        let Value::Object(map) = self.to_json() else {
            unreachable!("to_json builds an object")
        };
        TrainSpec::from_params(&map).map(|_| ())
    }

    /// The resolved parameters as JSON (for logging what was actually trained).
    pub fn to_json(&self) -> Value {
        json!({
            "levels": self.levels,
            "units_per_level": self.units_per_level,
            "neurons_per_unit": self.neurons_per_unit,
            "activation": self.activation.name(),
            "p_lateral_connection": self.p_lateral_connection,
            "predecessor_affinity": self.predecessor_affinity,
            "dropout": self.dropout,
            "normalization": self.normalization,
            "learning_rate": self.learning_rate,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "optimizer": self.optimizer.name(),
            "momentum": self.momentum,
            "weight_decay": self.weight_decay,
            "patience": self.patience,
            "seed": self.seed,
            "split_seed": self.split_seed,
            "validation_fraction": self.validation_fraction,
        })
    }
}

/// Short, safe rendering of a caller-supplied string for messages.
fn quoted(s: &str) -> String {
    let cut: String = s.chars().take(40).collect();
    let ellipsis = if cut.len() < s.len() { "…" } else { "" };
    format!("{:?}{ellipsis}", cut)
}

/// Short rendering of any JSON value for messages.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => quoted(s),
        Value::Array(_) => "an array".to_string(),
        Value::Object(_) => "an object".to_string(),
        other => other.to_string(),
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|x| x.is_finite()),
        _ => None,
    }
}

fn int_in(field: &str, v: &Value, lo: u64, hi: u64) -> Result<u64, ParamError> {
    let what = if lo == 0 {
        "a non-negative integer".to_string()
    } else if lo == 1 {
        "a positive integer".to_string()
    } else {
        format!("an integer ≥ {lo}")
    };
    let exact = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    let parsed = exact.or_else(|| {
        number(v)
            .filter(|x| x.fract() == 0.0 && *x >= 0.0 && *x < 9.0e15)
            .map(|x| x as u64)
    });
    match parsed {
        Some(n) if n < lo => Err(ParamError::new(
            field,
            format!("must be {what}, got {}", shown(v)),
        )),
        Some(n) if n > hi => Err(ParamError::new(
            field,
            format!("must be at most {hi}, got {n}"),
        )),
        Some(n) => Ok(n),
        None => Err(ParamError::new(
            field,
            format!("must be {what}, got {}", shown(v)),
        )),
    }
}

fn int_list(field: &str, v: &Value, hi: usize) -> Result<Vec<usize>, ParamError> {
    match v {
        Value::Array(items) if items.is_empty() => {
            Err(ParamError::new(field, "must not be an empty array"))
        }
        Value::Array(items) if items.len() > MAX_LEVELS => Err(ParamError::new(
            field,
            format!(
                "has {} entries, at most {MAX_LEVELS} levels are allowed",
                items.len()
            ),
        )),
        Value::Array(items) => items
            .iter()
            .map(|item| int_in(field, item, 1, hi as u64).map(|n| n as usize))
            .collect(),
        single => Ok(vec![int_in(field, single, 1, hi as u64)? as usize]),
    }
}

fn longest_list(a: &Option<Vec<usize>>, b: &Option<Vec<usize>>) -> Option<usize> {
    let la = a.as_ref().map_or(0, Vec::len);
    let lb = b.as_ref().map_or(0, Vec::len);
    let longest = la.max(lb);
    (longest > 1).then_some(longest)
}

fn broadcast(
    field: &str,
    list: Option<Vec<usize>>,
    levels: usize,
    default: usize,
) -> Result<Vec<usize>, ParamError> {
    match list {
        None => Ok(vec![default; levels]),
        Some(l) if l.len() == 1 => Ok(vec![l[0]; levels]),
        Some(l) if l.len() == levels => Ok(l),
        Some(l) => Err(ParamError::new(
            field,
            format!("has {} entries but `levels` is {levels}", l.len()),
        )),
    }
}

fn float_in(field: &str, v: &Value, lo: f64, hi: f64, lo_ok: bool) -> Result<f64, ParamError> {
    let open = if lo_ok { "[" } else { "(" };
    let err = || {
        ParamError::new(
            field,
            format!("must be a number in {open}{lo}, {hi}], got {}", shown(v)),
        )
    };
    let x = number(v).ok_or_else(err)?;
    let above = if lo_ok { x >= lo } else { x > lo };
    if above && x <= hi { Ok(x) } else { Err(err()) }
}

/// A probability: `[0, 1]` when `one_ok`, else `[0, 1)`.
fn prob(field: &str, v: &Value, one_ok: bool) -> Result<f64, ParamError> {
    let close = if one_ok { "]" } else { ")" };
    let err = || {
        ParamError::new(
            field,
            format!("must be a number in [0, 1{close}, got {}", shown(v)),
        )
    };
    let x = number(v).ok_or_else(err)?;
    let below = if one_ok { x <= 1.0 } else { x < 1.0 };
    if x >= 0.0 && below { Ok(x) } else { Err(err()) }
}

fn string<'a>(field: &str, v: &'a Value) -> Result<&'a str, ParamError> {
    v.as_str()
        .ok_or_else(|| ParamError::new(field, format!("must be a string, got {}", shown(v))))
}

fn switch(field: &str, v: &Value) -> Result<bool, ParamError> {
    let parsed = match v {
        Value::Bool(b) => Some(*b),
        Value::Null => Some(false),
        Value::Number(n) => match n.as_f64() {
            Some(0.0) => Some(false),
            Some(1.0) => Some(true),
            _ => None,
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "on" | "yes" | "1" | "layer" | "layer_norm" | "layernorm" => Some(true),
            "false" | "off" | "no" | "0" | "none" => Some(false),
            _ => None,
        },
        _ => None,
    };
    parsed.ok_or_else(|| {
        ParamError::new(
            field,
            format!(
                "must be true/false or \"layer_norm\"/\"none\", got {}",
                shown(v)
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<(TrainSpec, Vec<String>), ParamError> {
        TrainSpec::from_params(v.as_object().expect("test params are objects"))
    }

    fn error(v: Value) -> ParamError {
        parse(v).expect_err("params should be rejected")
    }

    #[test]
    fn empty_params_give_the_documented_defaults() {
        let (spec, warnings) = parse(json!({})).unwrap();
        assert_eq!(spec, TrainSpec::default());
        assert!(warnings.is_empty());
    }

    #[test]
    fn notebook_params_train_with_lr_alias_and_warn_about_the_rest() {
        let (spec, warnings) =
            parse(json!({"head": "kgam", "lr": 0.003, "controller.smooth": 0.2})).unwrap();
        assert_eq!(spec.learning_rate, 0.003);
        assert_eq!(warnings.len(), 2);
        assert!(warnings[0].contains("head") && warnings[1].contains("controller.smooth"));
    }

    #[test]
    fn negative_epochs_name_the_field_and_value() {
        let e = error(json!({"epochs": -3}));
        assert_eq!(e.field, "epochs");
        assert_eq!(e.to_string(), "`epochs` must be a positive integer, got -3");
    }

    #[test]
    fn bad_values_are_rejected_with_their_field() {
        let cases = [
            (json!({"epochs": 0}), "epochs"),
            (json!({"epochs": 2.5}), "epochs"),
            (json!({"epochs": 10_001}), "epochs"),
            (json!({"lr": 0}), "lr"),
            (json!({"learning_rate": -0.1}), "learning_rate"),
            (json!({"lr": "fast"}), "lr"),
            (json!({"activation": "softmax"}), "activation"),
            (json!({"optimizer": "lbfgs"}), "optimizer"),
            (json!({"dropout": 1.0}), "dropout"),
            (json!({"dropout": -0.1}), "dropout"),
            (json!({"batch_size": 0}), "batch_size"),
            (json!({"levels": 17}), "levels"),
            (json!({"units_per_level": 65}), "units_per_level"),
            (json!({"neurons_per_unit": [8, 5000]}), "neurons_per_unit"),
            (
                json!({"levels": 3, "neurons_per_unit": [8, 8]}),
                "neurons_per_unit",
            ),
            (json!({"seed": -1}), "seed"),
            (json!({"p_lateral_connection": 20}), "p_lateral_connection"),
            (json!({"validation_fraction": 0.9}), "validation_fraction"),
            (json!({"normalization": "batch"}), "normalization"),
            (json!({"lr": 0.1, "learning_rate": 0.2}), "learning_rate"),
        ];
        for (params, field) in cases {
            let e = error(params.clone());
            assert_eq!(e.field, field, "{params}: {e}");
            assert!(e.to_string().starts_with(&format!("`{field}`")), "{e}");
        }
    }

    #[test]
    fn integers_may_arrive_as_integral_floats_or_strings() {
        let (spec, _) = parse(json!({"epochs": 20.0, "batch_size": "16", "lr": "0.001"})).unwrap();
        assert_eq!(
            (spec.epochs, spec.batch_size, spec.learning_rate),
            (20, 16, 0.001)
        );
    }

    #[test]
    fn integer_sizes_broadcast_and_lists_set_the_level_count() {
        let (spec, _) = parse(json!({"levels": 3, "units_per_level": 4})).unwrap();
        assert_eq!(spec.units_per_level, vec![4, 4, 4]);
        assert_eq!(spec.neurons_per_unit, vec![32, 32, 32]);
        let (spec, _) = parse(json!({"neurons_per_unit": [128, 64]})).unwrap();
        assert_eq!((spec.levels, spec.units_per_level.clone()), (2, vec![2, 2]));
        let (spec, _) = parse(json!({"neurons_per_unit": [16, 16, 8]})).unwrap();
        assert_eq!(spec.levels, 3);
    }

    #[test]
    fn adamw_defaults_to_some_weight_decay_and_patience_parses() {
        let (spec, _) = parse(json!({"optimizer": "AdamW", "patience": 5})).unwrap();
        assert_eq!(
            (spec.optimizer, spec.weight_decay, spec.patience),
            (Optimizer::AdamW, 0.01, Some(5))
        );
        let (spec, _) = parse(json!({"optimizer": "adamw", "weight_decay": 0})).unwrap();
        assert_eq!(spec.weight_decay, 0.0);
    }

    #[test]
    fn to_json_reparses_to_the_same_spec() {
        let (spec, _) = parse(
            json!({"levels": 3, "activation": "gelu", "normalization": true,
            "optimizer": "sgd", "patience": 4, "seed": 9}),
        )
        .unwrap();
        let (again, warnings) = parse(spec.to_json()).unwrap();
        assert_eq!(again, spec);
        assert!(warnings.is_empty());
    }

    #[test]
    fn known_keys_are_the_resolved_keys_plus_the_lr_alias() {
        let resolved: Vec<String> = TrainSpec::default()
            .to_json()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        let known: Vec<String> = KNOWN_KEYS
            .iter()
            .filter(|k| **k != "lr")
            .map(|k| k.to_string())
            .collect();
        assert_eq!(resolved, known);
    }

    #[test]
    fn hand_built_specs_are_validated() {
        assert_eq!(TrainSpec::default().validate(), Ok(()));
        let zero_batch = TrainSpec {
            batch_size: 0,
            ..TrainSpec::default()
        };
        assert_eq!(zero_batch.validate().unwrap_err().field, "batch_size");
        let nan_lr = TrainSpec {
            learning_rate: f64::NAN,
            ..TrainSpec::default()
        };
        assert_eq!(nan_lr.validate().unwrap_err().field, "learning_rate");
        let short = TrainSpec {
            levels: 3,
            ..TrainSpec::default()
        };
        assert_eq!(short.validate().unwrap_err().field, "units_per_level");
        let one = TrainSpec {
            neurons_per_unit: vec![8],
            ..TrainSpec::default()
        };
        assert_eq!(one.validate().unwrap_err().field, "neurons_per_unit");
        let empty = TrainSpec {
            levels: 0,
            units_per_level: vec![],
            neurons_per_unit: vec![],
            ..TrainSpec::default()
        };
        assert_eq!(empty.validate().unwrap_err().field, "levels");
    }

    #[test]
    fn long_unknown_strings_are_truncated_in_messages() {
        let long = "x".repeat(500);
        let e = error(json!({"activation": long}));
        assert!(e.to_string().len() < 200, "{e}");
    }
}
