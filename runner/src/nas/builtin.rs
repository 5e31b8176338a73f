//! Datasets generated in code, so a default training needs no files and no services.
//!
//! Each generator uses its own fixed seed: the same name always gives the same rows.

use std::f64::consts::PI;

use super::dataset::Dataset;
use crate::rng::Rng;

/// Names [`generate`] knows.
pub(crate) const NAMES: &[&str] = &["moons", "spirals", "xor", "friedman1", "iris"];

/// The classic iris measurements (Fisher, 1936): 150 rows, 4 features, 3 classes.
const IRIS_CSV: &str = include_str!("data/iris.csv");

/// Generates the named dataset, or `None` for an unknown name.
pub(crate) fn generate(name: &str) -> Option<Dataset> {
    let built = match name {
        "moons" => moons(400, 0.15),
        "spirals" => spirals(400, 0.2),
        "xor" => xor(400, 0.1),
        "friedman1" => friedman1(500, 1.0),
        "iris" => Dataset::from_csv(IRIS_CSV.as_bytes()),
        _ => return None,
    };
    built.ok()
}

fn two_feature_classes(points: Vec<(f64, f64, f64)>) -> Result<Dataset, super::DatasetError> {
    let mut features = Vec::with_capacity(points.len() * 2);
    let mut targets = Vec::with_capacity(points.len());
    for (x, y, label) in points {
        features.extend([x as f32, y as f32]);
        targets.push(label);
    }
    Dataset::assemble(
        features,
        vec!["x".into(), "y".into()],
        "label".into(),
        targets,
        3,
    )
}

/// Two interleaving half circles with Gaussian noise; classes 0 and 1, alternating rows.
fn moons(n: usize, noise: f64) -> Result<Dataset, super::DatasetError> {
    let mut rng = Rng::seed_from_u64(0x6d6f_6f6e);
    let points = (0..n)
        .map(|i| {
            let t = PI * rng.next_f64();
            let (x, y, label) = if i % 2 == 0 {
                (t.cos(), t.sin(), 0.0)
            } else {
                (1.0 - t.cos(), 0.5 - t.sin(), 1.0)
            };
            (x + noise * rng.normal(), y + noise * rng.normal(), label)
        })
        .collect();
    two_feature_classes(points)
}

/// Two arms of an Archimedean spiral, one per class.
fn spirals(n: usize, noise: f64) -> Result<Dataset, super::DatasetError> {
    let mut rng = Rng::seed_from_u64(0x7370_6972);
    let points = (0..n)
        .map(|i| {
            let r = rng.next_f64().sqrt() * 3.0 * PI;
            let arm = (i % 2) as f64;
            let angle = r + arm * PI;
            (
                r * angle.cos() / PI + noise * rng.normal(),
                r * angle.sin() / PI + noise * rng.normal(),
                arm,
            )
        })
        .collect();
    two_feature_classes(points)
}

/// Points in the four quadrants of the square [-1, 1]²; class 1 where the signs differ.
fn xor(n: usize, noise: f64) -> Result<Dataset, super::DatasetError> {
    let mut rng = Rng::seed_from_u64(0x0078_6f72);
    let points = (0..n)
        .map(|i| {
            let sx = if i % 2 == 0 { 1.0 } else { -1.0 };
            let sy = if (i / 2) % 2 == 0 { 1.0 } else { -1.0 };
            let x = sx * rng.uniform(0.1, 1.0) + noise * rng.normal();
            let y = sy * rng.uniform(0.1, 1.0) + noise * rng.normal();
            (x, y, if sx * sy < 0.0 { 1.0 } else { 0.0 })
        })
        .collect();
    two_feature_classes(points)
}

/// Friedman's regression problem #1: ten uniform features, five of them used,
/// `y = 10 sin(π x0 x1) + 20 (x2 − 0.5)² + 10 x3 + 5 x4 + noise`.
fn friedman1(n: usize, noise: f64) -> Result<Dataset, super::DatasetError> {
    let mut rng = Rng::seed_from_u64(0x6672_6965);
    let d = 10;
    let mut features = Vec::with_capacity(n * d);
    let mut targets = Vec::with_capacity(n);
    for _ in 0..n {
        let x: Vec<f64> = (0..d).map(|_| rng.next_f64()).collect();
        let y = 10.0 * (PI * x[0] * x[1]).sin()
            + 20.0 * (x[2] - 0.5).powi(2)
            + 10.0 * x[3]
            + 5.0 * x[4]
            + noise * rng.normal();
        features.extend(x.iter().map(|v| *v as f32));
        targets.push(y);
    }
    let names = (0..d).map(|i| format!("x{i}")).collect();
    Dataset::assemble(features, names, "y".into(), targets, d + 1)
}

#[cfg(test)]
mod tests {
    use super::super::Task;
    use super::*;

    #[test]
    fn every_builtin_builds_with_its_task() {
        for name in NAMES {
            let d = generate(name).unwrap_or_else(|| panic!("{name} should build"));
            let expected_regression = *name == "friedman1";
            assert_eq!(d.task() == Task::Regression, expected_regression, "{name}");
            assert_eq!(d.features().len(), d.len() * d.n_features());
        }
        assert_eq!(
            generate("iris").unwrap().task(),
            Task::Classification { classes: 3 }
        );
        assert_eq!(generate("iris").unwrap().len(), 150);
        assert!(generate("mnist").is_none());
    }

    #[test]
    fn builtins_are_deterministic_and_balanced() {
        assert_eq!(generate("moons"), generate("moons"));
        let moons = generate("moons").unwrap();
        let ones = moons.targets().iter().filter(|t| **t == 1.0).count();
        assert_eq!(ones * 2, moons.len());
    }
}
