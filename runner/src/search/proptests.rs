//! Property tests: the parser never panics, valid specs round-trip, and every proposed value lies
//! in its parameter's domain with the parameter's JSON type.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::Strategy as Sampler;
use super::{Direction, Observation, Outcome, ProposeRequest, SearchSpace, TpeOptions, propose};

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        (-5.0..5.0f64).prop_map(Value::from),
        "[a-z]{0,4}".prop_map(Value::from),
        prop::sample::select(vec![
            "uniform",
            "loguniform",
            "quniform",
            "int",
            "choice",
            "const",
            "float",
            "categorical",
            "name",
            "type",
            "low",
            "high",
            "log",
            "step",
            "choices"
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let keys = prop::sample::select(vec![
            "uniform",
            "loguniform",
            "quniform",
            "int",
            "choice",
            "const",
            "log",
            "step",
            "name",
            "type",
            "low",
            "high",
            "choices",
            "x",
        ]);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((keys, inner), 0..6).prop_map(|kv| Value::Object(
                kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            )),
        ]
    })
}

/// A valid parameter spec in the map dialect.
fn valid_spec() -> impl Strategy<Value = Value> {
    let scalar = prop_oneof![
        any::<i32>().prop_map(Value::from),
        "[a-z]{1,6}".prop_map(Value::from),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
        (-1e3..1e3f64).prop_map(Value::from),
    ];
    prop_oneof![
        (-1e6..1e6f64, 1e-6..1e6f64).prop_map(|(lo, w)| json!({"uniform": [lo, lo + w]})),
        (1e-8..1e3f64, 1.001..1e6f64).prop_map(|(lo, f)| json!({"loguniform": [lo, lo * f]})),
        (
            -10_000..10_000i32,
            prop::sample::select(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]),
            1..200u32,
            0.0..0.99f64
        )
            .prop_map(|(lo, q, n, extra)| {
                let lo = lo as f64 / 100.0;
                json!({"quniform": [lo, lo + (n as f64 + extra) * q, q]})
            }),
        (-1000..1000i64, 1..10_000i64, 1..50i64)
            .prop_map(|(lo, w, s)| json!({"int": [lo, lo + w], "step": s.min(w)})),
        (1..1000i64, 1..100_000i64).prop_map(|(lo, w)| json!({"int": [lo, lo + w], "log": true})),
        prop::collection::vec(scalar, 1..12).prop_map(|mut c| {
            let mut seen = Vec::new();
            c.retain(|v| {
                if seen.contains(v) {
                    false
                } else {
                    seen.push(v.clone());
                    true
                }
            });
            json!({"choice": c})
        }),
        any_json().prop_map(|v| json!({"const": v})),
    ]
}

fn valid_space() -> impl Strategy<Value = Value> {
    prop::collection::btree_map("[a-z][a-z0-9_.]{0,8}", valid_spec(), 1..7)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

fn propose_with(
    space: &SearchSpace,
    history: &[Observation],
    strategy: Sampler,
    multivariate: bool,
    seed: u64,
) -> Vec<super::Proposal> {
    propose(&ProposeRequest {
        space,
        history,
        pending: &[],
        k: 3,
        strategy,
        direction: Direction::Minimize,
        seed,
        options: TpeOptions {
            multivariate,
            ..TpeOptions::default()
        },
    })
}

proptest! {
    #[test]
    fn parse_never_panics(v in any_json()) {
        let _ = SearchSpace::parse(&v);
        let _ = SearchSpace::parse(&json!({"p": v.clone()}));
        let _ = SearchSpace::parse(&json!([v]));
    }

    #[test]
    fn valid_specs_parse_and_round_trip(spec in valid_space()) {
        let space = SearchSpace::parse(&spec).expect("a valid spec parses");
        prop_assert_eq!(space.len(), spec.as_object().map_or(0, Map::len));
        prop_assert_eq!(SearchSpace::parse(&space.to_json()).expect("to_json parses"), space);
    }

    #[test]
    fn every_proposed_value_lies_in_its_domain(spec in valid_space(), seed in any::<u64>()) {
        let space = SearchSpace::parse(&spec).expect("a valid spec parses");
        let mut history = Vec::new();
        for (i, p) in propose_with(&space, &[], Sampler::Random, true, seed).into_iter().cycle().take(3).enumerate() {
            prop_assert!(space.contains(&p.params), "random proposal {:?}", p.params);
            history.push(Observation { params: p.params, outcome: Outcome::Complete(i as f64) });
        }
        for i in 0..12u64 {
            let batch = propose_with(&space, &[], Sampler::Random, true, seed ^ (i + 1));
            for (j, p) in batch.into_iter().enumerate() {
                let outcome = if j == 2 { Outcome::Failed } else { Outcome::Complete((seed ^ i) as f64 % 7.0 + j as f64) };
                history.push(Observation { params: p.params, outcome });
            }
        }
        for multivariate in [true, false] {
            for p in propose_with(&space, &history, Sampler::Tpe, multivariate, seed) {
                prop_assert!(space.contains(&p.params), "TPE proposal {:?}", p.params);
                prop_assert!(!p.log_l.is_nan() && !p.log_g.is_nan());
            }
        }
    }
}
