//! Deterministic train/validation split and standardisation with training-split statistics.

use super::dataset::{Dataset, Task};
use crate::rng::Rng;

/// Targets in the form the loss wants.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Targets {
    /// Class indices.
    Classes(Vec<usize>),
    /// Standardised regression targets.
    Values(Vec<f32>),
}

impl Targets {
    fn pick(&self, rows: &[usize]) -> Targets {
        match self {
            Targets::Classes(c) => Targets::Classes(rows.iter().map(|&i| c[i]).collect()),
            Targets::Values(v) => Targets::Values(rows.iter().map(|&i| v[i]).collect()),
        }
    }
}

/// One side of the split, standardised.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Part {
    pub x: Vec<f32>,
    pub y: Targets,
    /// Raw targets (original units), for regression metrics.
    pub raw: Vec<f64>,
    pub rows: usize,
}

/// Both sides plus the statistics used to standardise them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Prepared {
    pub train: Part,
    pub val: Part,
    pub feature_mean: Vec<f32>,
    pub feature_std: Vec<f32>,
    /// Regression target mean and standard deviation (0 and 1 for classification).
    pub target_mean: f64,
    pub target_std: f64,
}

/// Splits `data` (stratified by class for classification) and standardises features (and
/// regression targets) with training-split statistics. Both sides get at least one row; the
/// caller guarantees at least two rows.
pub(crate) fn prepare(data: &Dataset, validation_fraction: f64, seed: u64) -> Prepared {
    let mut rng = Rng::seed_from_u64(seed ^ 0x5350_4c49_5400);
    let n = data.len();
    let mut val_rows = Vec::new();
    let mut train_rows = Vec::new();
    match data.task() {
        Task::Classification { classes } => {
            let idx = data.class_indices();
            let mut groups = vec![Vec::new(); classes];
            for (row, &c) in idx.iter().enumerate() {
                groups[c].push(row);
            }
            for mut g in groups {
                rng.shuffle(&mut g);
                let take = ((g.len() as f64 * validation_fraction).round() as usize)
                    .min(g.len().saturating_sub(1));
                val_rows.extend_from_slice(&g[..take]);
                train_rows.extend_from_slice(&g[take..]);
            }
        }
        Task::Regression => {
            let mut all: Vec<usize> = (0..n).collect();
            rng.shuffle(&mut all);
            let take = (n as f64 * validation_fraction).round() as usize;
            val_rows.extend_from_slice(&all[..take]);
            train_rows.extend_from_slice(&all[take..]);
        }
    }
    if val_rows.is_empty()
        && let Some(row) = train_rows.pop()
    {
        val_rows.push(row);
    }
    if train_rows.is_empty()
        && let Some(row) = val_rows.pop()
    {
        train_rows.push(row);
    }
    val_rows.sort_unstable();
    train_rows.sort_unstable();

    let d = data.n_features();
    let x = data.features();
    let mut mean = vec![0.0_f64; d];
    let mut sq = vec![0.0_f64; d];
    for &r in &train_rows {
        for j in 0..d {
            mean[j] += f64::from(x[r * d + j]);
        }
    }
    let nt = train_rows.len() as f64;
    mean.iter_mut().for_each(|m| *m /= nt);
    for &r in &train_rows {
        for j in 0..d {
            sq[j] += (f64::from(x[r * d + j]) - mean[j]).powi(2);
        }
    }
    let std: Vec<f64> = sq
        .iter()
        .map(|s| (s / nt).sqrt())
        .map(|s| if s > 1e-12 { s } else { 1.0 })
        .collect();

    let raw = data.targets();
    let (targets, target_mean, target_std) = match data.task() {
        Task::Classification { .. } => (Targets::Classes(data.class_indices()), 0.0, 1.0),
        Task::Regression => {
            let m = train_rows.iter().map(|&r| raw[r]).sum::<f64>() / nt;
            let v = train_rows
                .iter()
                .map(|&r| (raw[r] - m).powi(2))
                .sum::<f64>()
                / nt;
            let s = if v.sqrt() > 1e-12 { v.sqrt() } else { 1.0 };
            (
                Targets::Values(raw.iter().map(|t| ((t - m) / s) as f32).collect()),
                m,
                s,
            )
        }
    };
    let part = |rows: &[usize]| {
        let mut out = Vec::with_capacity(rows.len() * d);
        for &r in rows {
            out.extend((0..d).map(|j| ((f64::from(x[r * d + j]) - mean[j]) / std[j]) as f32));
        }
        Part {
            x: out,
            y: targets.pick(rows),
            raw: rows.iter().map(|&r| raw[r]).collect(),
            rows: rows.len(),
        }
    };
    Prepared {
        train: part(&train_rows),
        val: part(&val_rows),
        feature_mean: mean.iter().map(|m| *m as f32).collect(),
        feature_std: std.iter().map(|s| *s as f32).collect(),
        target_mean,
        target_std,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_split_is_stratified_and_deterministic() {
        let iris = Dataset::builtin("iris").unwrap();
        let p = prepare(&iris, 0.2, 0);
        assert_eq!((p.train.rows, p.val.rows), (120, 30));
        let Targets::Classes(val) = &p.val.y else {
            panic!("iris is classification")
        };
        for class in 0..3 {
            assert_eq!(val.iter().filter(|c| **c == class).count(), 10);
        }
        assert_eq!(p, prepare(&iris, 0.2, 0));
        assert_ne!(p.val.x, prepare(&iris, 0.2, 1).val.x);
    }

    #[test]
    fn training_features_are_standardised() {
        let p = prepare(&Dataset::builtin("friedman1").unwrap(), 0.2, 3);
        let d = 10;
        for j in 0..d {
            let col: Vec<f64> = (0..p.train.rows)
                .map(|r| f64::from(p.train.x[r * d + j]))
                .collect();
            let mean = col.iter().sum::<f64>() / col.len() as f64;
            let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / col.len() as f64;
            assert!(
                mean.abs() < 1e-4 && (var - 1.0).abs() < 1e-3,
                "column {j}: {mean} {var}"
            );
        }
        assert_eq!(p.train.rows + p.val.rows, 500);
    }

    #[test]
    fn tiny_datasets_keep_a_row_on_each_side() {
        let d = Dataset::from_rows(&serde_json::json!([[0.0, 1.0], [1.0, 2.0]])).unwrap();
        let p = prepare(&d, 0.05, 0);
        assert_eq!((p.train.rows, p.val.rows), (1, 1));
    }
}
