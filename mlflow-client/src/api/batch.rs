//! Splitting `runs/log-batch` payloads to MLflow's limits. Pure computation, no I/O.

use bytes::Bytes;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::types::{Metric, Param, Tag};

/// Per-request limits of `runs/log-batch` (`mlflow/utils/validation.py`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Metrics per request.
    pub max_metrics: usize,
    /// Params per request.
    pub max_params: usize,
    /// Tags per request.
    pub max_tags: usize,
    /// Metrics, params and tags together per request.
    pub max_entities: usize,
    /// Request body size in bytes.
    pub max_bytes: usize,
}

impl BatchLimits {
    /// MLflow's limits: 1000 metrics, 100 params, 100 tags, 1000 entities, 1 MB.
    pub const MLFLOW: BatchLimits = BatchLimits {
        max_metrics: 1000,
        max_params: 100,
        max_tags: 100,
        max_entities: 1000,
        max_bytes: 1_000_000,
    };
}

impl Default for BatchLimits {
    fn default() -> Self {
        Self::MLFLOW
    }
}

/// Encodes the `log-batch` request bodies for `run_id`, each within `limits`.
///
/// Params go first (they are write-once, as MLflow's own client orders them), then tags, then metrics,
/// each in the caller's order. Every body is exact JSON; nothing is sent for an empty batch.
pub fn encode_batches(
    run_id: &str,
    metrics: &[Metric],
    params: &[Param],
    tags: &[Tag],
    limits: &BatchLimits,
) -> Result<Vec<Bytes>> {
    let params = encode_all(params)?;
    let tags = encode_all(tags)?;
    let metrics = encode_all(metrics)?;
    let run_id_json = to_json(run_id)?;

    let mut bodies = Vec::new();
    let (mut p, mut t, mut m) = (0, 0, 0);
    while p < params.len() || t < tags.len() || m < metrics.len() {
        let mut chunk = Chunk::new(run_id_json.len(), limits);
        let p_end = chunk.take(&params, p, limits.max_params);
        let t_end = chunk.take(&tags, t, limits.max_tags);
        let m_end = chunk.take(&metrics, m, limits.max_metrics);
        if chunk.entities == 0 {
            return Err(Error::InvalidArgument(format!(
                "a single log-batch item does not fit in {} bytes",
                limits.max_bytes
            )));
        }
        bodies.push(assemble(
            &run_id_json,
            &metrics[m..m_end],
            &params[p..p_end],
            &tags[t..t_end],
        ));
        (p, t, m) = (p_end, t_end, m_end);
    }
    Ok(bodies)
}

/// `{"run_id":…,"metrics":[],"params":[],"tags":[]}` without the run id.
const ENVELOPE: usize = r#"{"run_id":,"metrics":[],"params":[],"tags":[]}"#.len();

struct Chunk<'l> {
    bytes: usize,
    entities: usize,
    limits: &'l BatchLimits,
}

impl<'l> Chunk<'l> {
    fn new(run_id_len: usize, limits: &'l BatchLimits) -> Self {
        Self {
            bytes: ENVELOPE + run_id_len,
            entities: 0,
            limits,
        }
    }

    /// Adds items from `start` while every limit holds; returns the end index.
    fn take(&mut self, items: &[Vec<u8>], start: usize, max_kind: usize) -> usize {
        let mut end = start;
        while end < items.len()
            && end - start < max_kind
            && self.entities < self.limits.max_entities
        {
            let separator = usize::from(end > start);
            let size = items[end].len() + separator;
            if self.bytes + size > self.limits.max_bytes {
                break;
            }
            self.bytes += size;
            self.entities += 1;
            end += 1;
        }
        end
    }
}

fn assemble(run_id: &[u8], metrics: &[Vec<u8>], params: &[Vec<u8>], tags: &[Vec<u8>]) -> Bytes {
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(br#"{"run_id":"#);
    out.extend_from_slice(run_id);
    for (name, items) in [
        (&br#","metrics":["#[..], metrics),
        (&br#"],"params":["#[..], params),
        (&br#"],"tags":["#[..], tags),
    ] {
        out.extend_from_slice(name);
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(item);
        }
    }
    out.extend_from_slice(b"]}");
    Bytes::from(out)
}

fn encode_all<T: Serialize>(items: &[T]) -> Result<Vec<Vec<u8>>> {
    items.iter().map(to_json).collect()
}

fn to_json<T: Serialize + ?Sized>(item: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(item)
        .map_err(|e| Error::InvalidArgument(format!("cannot encode log-batch item: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn metrics(n: usize) -> Vec<Metric> {
        (0..n)
            .map(|i| Metric {
                key: format!("m{}", i % 7),
                value: i as f64 * 0.5,
                timestamp: 1_700_000_000_000 + i as i64,
                step: i as i64,
            })
            .collect()
    }

    fn decode(bodies: &[Bytes]) -> Vec<Value> {
        bodies
            .iter()
            .map(|b| serde_json::from_slice(b).expect("valid JSON"))
            .collect()
    }

    fn counts(v: &Value) -> (usize, usize, usize) {
        let n = |k: &str| v[k].as_array().expect("array").len();
        (n("metrics"), n("params"), n("tags"))
    }

    #[test]
    fn empty_batch_sends_nothing() {
        let bodies = encode_batches("r", &[], &[], &[], &BatchLimits::MLFLOW).expect("ok");
        assert!(bodies.is_empty());
    }

    #[test]
    fn splits_5000_metrics_into_five_requests_in_order() {
        let ms = metrics(5000);
        let bodies = encode_batches("run1", &ms, &[], &[], &BatchLimits::MLFLOW).expect("ok");
        let decoded = decode(&bodies);
        assert_eq!(decoded.len(), 5);
        let mut steps = Vec::new();
        for v in &decoded {
            assert_eq!(v["run_id"], "run1");
            assert_eq!(counts(v), (1000, 0, 0));
            steps.extend(
                v["metrics"]
                    .as_array()
                    .expect("array")
                    .iter()
                    .map(|m| m["step"].as_i64().expect("step")),
            );
        }
        assert_eq!(steps, (0..5000).collect::<Vec<i64>>());
    }

    #[test]
    fn params_and_tags_are_capped_at_100_and_entities_at_1000() {
        let params: Vec<Param> = (0..250).map(|i| Param::new(format!("p{i}"), "v")).collect();
        let tags: Vec<Tag> = (0..30).map(|i| Tag::new(format!("t{i}"), "v")).collect();
        let ms = metrics(1500);
        let bodies = encode_batches("r", &ms, &params, &tags, &BatchLimits::MLFLOW).expect("ok");
        let decoded = decode(&bodies);
        let c: Vec<_> = decoded.iter().map(counts).collect();
        assert_eq!(c, vec![(870, 100, 30), (630, 100, 0), (0, 50, 0)]);
        for v in &decoded {
            let (m, p, t) = counts(v);
            assert!(m + p + t <= 1000);
        }
    }

    #[test]
    fn body_size_limit_is_respected_exactly() {
        let params: Vec<Param> = (0..100)
            .map(|i| Param::new(format!("p{i}"), "x".repeat(6000)))
            .collect();
        let tags: Vec<Tag> = (0..100)
            .map(|i| Tag::new(format!("t{i}"), "y".repeat(5000)))
            .collect();
        let bodies = encode_batches("r", &[], &params, &tags, &BatchLimits::MLFLOW).expect("ok");
        assert!(bodies.len() >= 2);
        let decoded = decode(&bodies);
        let total: (usize, usize, usize) = decoded
            .iter()
            .map(counts)
            .fold((0, 0, 0), |a, c| (a.0 + c.0, a.1 + c.1, a.2 + c.2));
        assert_eq!(total, (0, 100, 100));
        for b in &bodies {
            assert!(b.len() <= 1_000_000, "body of {} bytes", b.len());
        }
        let tight = BatchLimits {
            max_bytes: 200,
            ..BatchLimits::MLFLOW
        };
        let small = encode_batches("r", &metrics(40), &[], &[], &tight).expect("ok");
        for b in &small {
            assert!(b.len() <= 200, "body of {} bytes", b.len());
        }
        assert_eq!(
            decode(&small).iter().map(|v| counts(v).0).sum::<usize>(),
            40
        );
    }

    #[test]
    fn item_larger_than_the_body_limit_is_an_error() {
        let tight = BatchLimits {
            max_bytes: 60,
            ..BatchLimits::MLFLOW
        };
        let params = vec![Param::new("k", "v".repeat(100))];
        assert!(matches!(
            encode_batches("r", &[], &params, &[], &tight),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn non_finite_values_are_encoded_as_strings() {
        let ms = vec![
            Metric {
                key: "a".into(),
                value: f64::NAN,
                timestamp: 1,
                step: 0,
            },
            Metric {
                key: "a".into(),
                value: f64::NEG_INFINITY,
                timestamp: 1,
                step: 1,
            },
        ];
        let bodies = encode_batches("r", &ms, &[], &[], &BatchLimits::MLFLOW).expect("ok");
        let v = &decode(&bodies)[0];
        assert_eq!(v["metrics"][0]["value"], "NaN");
        assert_eq!(v["metrics"][1]["value"], "-Infinity");
    }
}
