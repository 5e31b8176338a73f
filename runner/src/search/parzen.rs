//! The Parzen estimator of TPE: a weighted mixture of product kernels, one component per
//! observation plus a prior component, after Optuna 5's `_ParzenEstimator`.
//!
//! - Numeric dimensions get a truncated normal per component, in log space for log parameters.
//!   Grid parameters (ints, quniform) widen their bounds by half a step and take the normal's
//!   mass over `[x − step/2, x + step/2]`. Each σ is the larger gap to the neighbouring
//!   observations (the bounds count as neighbours; with `consider_endpoints = false` the two
//!   extreme observations ignore the bound), clipped to `[range / min(100, 1 + n_kernels), range]`
//!   when `consider_magic_clip` is on. The prior component sits in the middle with σ = range.
//! - Categorical dimensions get a row of probabilities per component: `prior_weight / n_kernels`
//!   everywhere plus 1 at the observed choice, normalised; the prior row is uniform.
//! - An observation missing a dimension (or out of its domain) uses the prior kernel there, so it
//!   still informs the dimensions it has.
//!
//! Densities are in the transformed space (log space for log parameters, grid masses for grid
//! parameters); TPE only compares them, so the Jacobian would cancel anyway.

use super::normal::{LN_SQRT_2PI, log_gauss_mass, truncnorm_ppf};
use super::space::DimSpec;
use crate::rng::Rng;

/// Knobs of the estimator (the Parzen part of [`super::TpeOptions`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ParzenParams {
    pub(crate) prior_weight: f64,
    pub(crate) consider_magic_clip: bool,
    pub(crate) consider_endpoints: bool,
}

/// Kernels of one dimension, for every component (observations first, prior last).
#[derive(Debug, Clone)]
enum DimKernels {
    Numeric(NumericKernels),
    Categorical {
        n: usize,
        /// The weight every choice gets in an observation's row before normalising.
        fill: f64,
        /// One row per component, in O(1) space each (spaces may have 1024 choices).
        rows: Vec<CategoricalRow>,
    },
}

/// A categorical kernel: uniform, or `fill` everywhere plus 1 at `hit`, normalised.
#[derive(Debug, Clone, Copy)]
struct CategoricalRow {
    hit: Option<usize>,
    /// Log probability of `hit`.
    log_hit: f64,
    /// Log probability of every other choice.
    log_miss: f64,
}

impl CategoricalRow {
    fn log_p(&self, c: usize) -> f64 {
        if self.hit == Some(c) {
            self.log_hit
        } else {
            self.log_miss
        }
    }

    fn sample(&self, n: usize, fill: f64, rng: &mut Rng) -> usize {
        let u = rng.next_f64();
        let pick = match self.hit {
            None => u * n as f64,
            Some(hit) => {
                let v = u * (n as f64 * fill + 1.0);
                if v < 1.0 {
                    return hit;
                }
                (v - 1.0) / fill
            }
        };
        (pick as usize).min(n - 1)
    }
}

#[derive(Debug, Clone)]
struct NumericKernels {
    /// Grid bounds and step in the parameter's own units (step 0 = continuous).
    low: f64,
    high: f64,
    step: f64,
    log: bool,
    /// Support of the kernels in the transformed space.
    lo_t: f64,
    hi_t: f64,
    mu: Vec<f64>,
    sigma: Vec<f64>,
    inv_sigma: Vec<f64>,
    /// `−ln σ − ln√(2π) − ln Z` for continuous kernels, `−ln Z` for grid kernels, where `Z` is
    /// the kernel's mass inside the support.
    log_norm: Vec<f64>,
    /// Grid kernels only: the distinct `(μ, σ)` pairs (observations of a grid parameter repeat, and so do
    /// their σ), and which pair each kernel is, so masses are computed once per pair.
    shapes: Vec<usize>,
    /// First kernel of each distinct shape.
    shape_rep: Vec<usize>,
}

/// A weighted mixture of product kernels over the modelled dimensions.
#[derive(Debug, Clone)]
pub(crate) struct ParzenEstimator {
    log_w: Vec<f64>,
    cum_w: Vec<f64>,
    dims: Vec<DimKernels>,
}

impl ParzenEstimator {
    /// Builds the estimator from `rows` (row-major raw values, `dims.len()` per row, `NaN` =
    /// missing) with one non-negative `weights` entry per row, oldest first.
    pub(crate) fn new(
        dims: &[DimSpec],
        rows: &[f64],
        weights: &[f64],
        params: &ParzenParams,
    ) -> Self {
        let d = dims.len();
        let n_obs = weights.len();
        debug_assert_eq!(rows.len(), n_obs * d);
        let mut w: Vec<f64> = if n_obs == 0 {
            vec![1.0]
        } else {
            weights
                .iter()
                .copied()
                .chain(std::iter::once(params.prior_weight))
                .collect()
        };
        let total: f64 = w.iter().sum();
        if total > 0.0 && total.is_finite() {
            w.iter_mut().for_each(|x| *x /= total);
        } else {
            let uniform = 1.0 / w.len() as f64;
            w.iter_mut().for_each(|x| *x = uniform);
        }
        let mut cum_w = Vec::with_capacity(w.len());
        let mut acc = 0.0;
        for x in &w {
            acc += x;
            cum_w.push(acc);
        }
        let dims = dims
            .iter()
            .enumerate()
            .map(|(j, spec)| {
                let column = (0..n_obs).map(|i| rows[i * d + j]);
                match *spec {
                    DimSpec::Numeric {
                        low,
                        high,
                        step,
                        log,
                    } => DimKernels::Numeric(NumericKernels::new(
                        low, high, step, log, column, params,
                    )),
                    DimSpec::Categorical { n } => categorical_kernels(n, n_obs, column, params),
                }
            })
            .collect();
        Self {
            log_w: w.iter().map(|x| x.ln()).collect(),
            cum_w,
            dims,
        }
    }

    /// Number of mixture components (observations plus the prior).
    pub(crate) fn n_components(&self) -> usize {
        self.log_w.len()
    }

    /// Draws `m` points (row-major raw values) from the mixture into `out`.
    pub(crate) fn sample(&self, rng: &mut Rng, m: usize, out: &mut Vec<f64>) {
        out.clear();
        out.reserve(m * self.dims.len());
        let last = self.cum_w.len() - 1;
        for _ in 0..m {
            let u = rng.next_f64() * self.cum_w[last];
            let k = self.cum_w.partition_point(|c| *c <= u).min(last);
            for dim in &self.dims {
                out.push(match dim {
                    DimKernels::Numeric(kern) => kern.sample(k, rng),
                    DimKernels::Categorical { n, fill, rows } => {
                        rows[k].sample(*n, *fill, rng) as f64
                    }
                });
            }
        }
    }

    /// Log density of each of the `points.len() / dims` points (row-major raw values) into `out`.
    /// `scratch` is reused between calls to avoid allocations.
    pub(crate) fn log_pdf(&self, points: &[f64], out: &mut Vec<f64>, scratch: &mut Vec<f64>) {
        let d = self.dims.len();
        let kc = self.n_components();
        let m = points.len().checked_div(d).unwrap_or(0);
        scratch.clear();
        for _ in 0..m {
            scratch.extend_from_slice(&self.log_w);
        }
        for (j, dim) in self.dims.iter().enumerate() {
            match dim {
                DimKernels::Numeric(kern) if kern.step == 0.0 => {
                    for (i, acc) in scratch.chunks_exact_mut(kc).enumerate() {
                        kern.add_continuous_log_pdf(points[i * d + j], acc);
                    }
                }
                DimKernels::Numeric(kern) => {
                    // Grid values repeat among candidates: compute each distinct value once.
                    let mut seen: Vec<(f64, usize)> = Vec::new();
                    let mut rows: Vec<f64> = Vec::new();
                    for (i, acc) in scratch.chunks_exact_mut(kc).enumerate() {
                        let x = points[i * d + j];
                        let r = match seen.iter().find(|(v, _)| *v == x) {
                            Some((_, r)) => *r,
                            None => {
                                let r = seen.len();
                                seen.push((x, r));
                                rows.resize((r + 1) * kc, 0.0);
                                kern.grid_log_pdf(x, &mut rows[r * kc..]);
                                r
                            }
                        };
                        acc.iter_mut()
                            .zip(&rows[r * kc..(r + 1) * kc])
                            .for_each(|(a, b)| *a += b);
                    }
                }
                DimKernels::Categorical { n, rows, .. } => {
                    for (i, acc) in scratch.chunks_exact_mut(kc).enumerate() {
                        let c = points[i * d + j];
                        if c >= 0.0 && (c as usize) < *n {
                            let c = c as usize;
                            acc.iter_mut()
                                .zip(rows)
                                .for_each(|(a, row)| *a += row.log_p(c));
                        } else {
                            acc.iter_mut().for_each(|a| *a = f64::NEG_INFINITY);
                        }
                    }
                }
            }
        }
        out.clear();
        out.extend(scratch.chunks_exact(kc).take(m).map(log_sum_exp));
    }
}

impl NumericKernels {
    fn new(
        low: f64,
        high: f64,
        step: f64,
        log: bool,
        column: impl Iterator<Item = f64>,
        params: &ParzenParams,
    ) -> Self {
        let t = |x: f64| if log { x.ln() } else { x };
        let (lo_t, hi_t) = (t(low - step / 2.0), t(high + step / 2.0));
        let range = hi_t - lo_t;
        let mus: Vec<f64> = column.map(|x| if x.is_nan() { x } else { t(x) }).collect();
        let n_valid = mus.iter().filter(|m| !m.is_nan()).count();
        let sigmas = neighbour_sigmas(&mus, lo_t, hi_t, params.consider_endpoints);
        let min_sigma = if params.consider_magic_clip {
            range / (1.0 + (n_valid + 1) as f64).min(100.0)
        } else {
            1e-12
        };
        let prior_mu = 0.5 * (lo_t + hi_t);
        let mut kern = Self {
            low,
            high,
            step,
            log,
            lo_t,
            hi_t,
            mu: Vec::with_capacity(mus.len() + 1),
            sigma: Vec::with_capacity(mus.len() + 1),
            inv_sigma: Vec::with_capacity(mus.len() + 1),
            log_norm: Vec::with_capacity(mus.len() + 1),
            shapes: Vec::new(),
            shape_rep: Vec::new(),
        };
        let mut shape_ids: std::collections::HashMap<(u64, u64), usize> = Default::default();
        let components = mus
            .iter()
            .zip(&sigmas)
            .map(|(&mu, &s)| {
                if mu.is_nan() {
                    (prior_mu, range)
                } else {
                    (mu, s.clamp(min_sigma, range))
                }
            })
            .chain(std::iter::once((prior_mu, range)));
        for (mu, sigma) in components {
            kern.mu.push(mu);
            kern.sigma.push(sigma);
            kern.inv_sigma.push(1.0 / sigma);
            if step == 0.0 {
                let log_mass = log_gauss_mass((lo_t - mu) / sigma, (hi_t - mu) / sigma);
                kern.log_norm.push(-sigma.ln() - LN_SQRT_2PI - log_mass);
                continue;
            }
            let k = kern.mu.len() - 1;
            let next = kern.shape_rep.len();
            let shape = *shape_ids
                .entry((mu.to_bits(), sigma.to_bits()))
                .or_insert(next);
            let log_norm = if shape == next {
                kern.shape_rep.push(k);
                -log_gauss_mass((lo_t - mu) / sigma, (hi_t - mu) / sigma)
            } else {
                kern.log_norm[kern.shape_rep[shape]]
            };
            kern.shapes.push(shape);
            kern.log_norm.push(log_norm);
        }
        kern
    }

    fn sample(&self, k: usize, rng: &mut Rng) -> f64 {
        let (mu, sigma) = (self.mu[k], self.sigma[k]);
        let z = truncnorm_ppf(
            (self.lo_t - mu) / sigma,
            (self.hi_t - mu) / sigma,
            rng.next_f64(),
        );
        let xt = (mu + sigma * z).clamp(self.lo_t, self.hi_t);
        let x = if self.log { xt.exp() } else { xt };
        if self.step == 0.0 {
            x.clamp(self.low, self.high)
        } else {
            let n = ((x - self.low) / self.step).round();
            (self.low + n * self.step).clamp(self.low, self.high)
        }
    }

    /// Adds each continuous kernel's log density at `x` to `acc`.
    fn add_continuous_log_pdf(&self, x: f64, acc: &mut [f64]) {
        let xt = if self.log { x.ln() } else { x };
        if !(xt >= self.lo_t && xt <= self.hi_t) {
            acc.iter_mut().for_each(|a| *a = f64::NEG_INFINITY);
            return;
        }
        for (((a, mu), inv), norm) in acc
            .iter_mut()
            .zip(&self.mu)
            .zip(&self.inv_sigma)
            .zip(&self.log_norm)
        {
            let z = (xt - mu) * inv;
            *a += norm - 0.5 * z * z;
        }
    }

    /// Writes each grid kernel's log mass at grid value `x` into `out`.
    fn grid_log_pdf(&self, x: f64, out: &mut [f64]) {
        let t = |v: f64| if self.log { v.ln() } else { v };
        let (l, r) = (t(x - self.step / 2.0), t(x + self.step / 2.0));
        let per_shape: Vec<f64> = self
            .shape_rep
            .iter()
            .map(|&k| {
                let (mu, inv) = (self.mu[k], self.inv_sigma[k]);
                log_gauss_mass((l - mu) * inv, (r - mu) * inv) + self.log_norm[k]
            })
            .collect();
        for (o, &shape) in out.iter_mut().zip(&self.shapes) {
            *o = per_shape[shape];
        }
    }
}

/// Optuna's σ rule: for each observation (NaN = skip), the larger gap to its sorted neighbours,
/// the bounds counting as neighbours.
fn neighbour_sigmas(mus: &[f64], lo: f64, hi: f64, consider_endpoints: bool) -> Vec<f64> {
    let mut sorted: Vec<(f64, usize)> = mus
        .iter()
        .enumerate()
        .filter(|(_, m)| !m.is_nan())
        .map(|(i, m)| (*m, i))
        .collect();
    sorted.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut sigmas = vec![f64::NAN; mus.len()];
    let n = sorted.len();
    let at = |r: usize| -> f64 {
        // Position r in the sorted list with the bounds at 0 and n + 1.
        if r == 0 {
            lo
        } else if r == n + 1 {
            hi
        } else {
            sorted[r - 1].0
        }
    };
    for r in 1..=n {
        let left = at(r) - at(r - 1);
        let right = at(r + 1) - at(r);
        let mut s = left.max(right);
        if !consider_endpoints && n >= 2 {
            if r == 1 {
                s = right;
            } else if r == n {
                s = left;
            }
        }
        sigmas[sorted[r - 1].1] = s;
    }
    sigmas
}

fn categorical_kernels(
    n: usize,
    n_obs: usize,
    column: impl Iterator<Item = f64>,
    params: &ParzenParams,
) -> DimKernels {
    // Optuna's row for an observation is `fill` everywhere plus 1 at the observed choice; the prior
    // row (and, here, the row of an observation missing this dimension) is uniform.
    let fill = params.prior_weight / (n_obs + 1) as f64;
    let total = n as f64 * fill + 1.0;
    let uniform = CategoricalRow {
        hit: None,
        log_hit: 0.0,
        log_miss: -(n as f64).ln(),
    };
    let rows = column
        .map(|c| {
            if c >= 0.0 && (c as usize) < n {
                CategoricalRow {
                    hit: Some(c as usize),
                    log_hit: ((fill + 1.0) / total).ln(),
                    log_miss: (fill / total).ln(),
                }
            } else {
                uniform
            }
        })
        .chain(std::iter::once(uniform))
        .collect();
    DimKernels::Categorical { n, fill, rows }
}

fn log_sum_exp(xs: &[f64]) -> f64 {
    let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY || max.is_nan() {
        return max;
    }
    // Terms more than 40 below the maximum add less than e^-40 each: skip their `exp`, which
    // would mostly underflow through libm's slow path.
    let sum: f64 = xs
        .iter()
        .map(|x| x - max)
        .filter(|d| *d > -40.0)
        .map(f64::exp)
        .sum();
    max + sum.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARAMS: ParzenParams = ParzenParams {
        prior_weight: 1.0,
        consider_magic_clip: true,
        consider_endpoints: false,
    };

    fn densities(est: &ParzenEstimator, points: &[f64]) -> Vec<f64> {
        let (mut out, mut scratch) = (Vec::new(), Vec::new());
        est.log_pdf(points, &mut out, &mut scratch);
        out.into_iter().map(f64::exp).collect()
    }

    #[test]
    fn a_continuous_density_integrates_to_one() {
        let dims = [DimSpec::Numeric {
            low: -5.0,
            high: 10.0,
            step: 0.0,
            log: false,
        }];
        let rows = [1.0, 1.2, 9.9, -4.0, 3.3];
        let est = ParzenEstimator::new(&dims, &rows, &[1.0; 5], &PARAMS);
        let n = 20_000;
        let h = 15.0 / n as f64;
        let grid: Vec<f64> = (0..n).map(|i| -5.0 + (i as f64 + 0.5) * h).collect();
        let total: f64 = densities(&est, &grid).iter().sum::<f64>() * h;
        assert!((total - 1.0).abs() < 1e-3, "integral {total}");
    }

    #[test]
    fn a_log_scale_density_integrates_to_one_in_log_space() {
        let dims = [DimSpec::Numeric {
            low: 1e-5,
            high: 1e-1,
            step: 0.0,
            log: true,
        }];
        let rows = [1e-3, 2e-3, 5e-2];
        let est = ParzenEstimator::new(&dims, &rows, &[1.0; 3], &PARAMS);
        let (a, b) = (1e-5f64.ln(), 1e-1f64.ln());
        let n = 20_000;
        let h = (b - a) / n as f64;
        let grid: Vec<f64> = (0..n).map(|i| (a + (i as f64 + 0.5) * h).exp()).collect();
        let total: f64 = densities(&est, &grid).iter().sum::<f64>() * h;
        assert!((total - 1.0).abs() < 1e-3, "integral {total}");
    }

    #[test]
    fn a_two_dimensional_mixture_integrates_to_one() {
        let dims = [
            DimSpec::Numeric {
                low: 0.0,
                high: 1.0,
                step: 0.0,
                log: false,
            },
            DimSpec::Numeric {
                low: 0.0,
                high: 1.0,
                step: 0.0,
                log: false,
            },
        ];
        let rows = [0.2, 0.8, 0.25, 0.7, 0.9, 0.1];
        let est = ParzenEstimator::new(&dims, &rows, &[1.0, 0.5, 1.0], &PARAMS);
        let n = 400;
        let h = 1.0 / n as f64;
        let mut grid = Vec::with_capacity(2 * n * n);
        for i in 0..n {
            for j in 0..n {
                grid.extend([(i as f64 + 0.5) * h, (j as f64 + 0.5) * h]);
            }
        }
        let total: f64 = densities(&est, &grid).iter().sum::<f64>() * h * h;
        assert!((total - 1.0).abs() < 2e-3, "integral {total}");
    }

    #[test]
    fn grid_and_categorical_masses_sum_to_one() {
        let dims = [
            DimSpec::Numeric {
                low: 1.0,
                high: 8.0,
                step: 1.0,
                log: false,
            },
            DimSpec::Numeric {
                low: 1.0,
                high: 64.0,
                step: 1.0,
                log: true,
            },
            DimSpec::Categorical { n: 4 },
        ];
        let rows = [3.0, 2.0, 2.0, 3.0, 40.0, 0.0, f64::NAN, 8.0, f64::NAN];
        let est = ParzenEstimator::new(&dims, &rows, &[1.0; 3], &PARAMS);
        let mut grid = Vec::new();
        for a in 1..=8 {
            for b in 1..=64 {
                for c in 0..4 {
                    grid.extend([a as f64, b as f64, c as f64]);
                }
            }
        }
        let total: f64 = densities(&est, &grid).iter().sum();
        assert!((total - 1.0).abs() < 1e-6, "total mass {total}");
    }

    #[test]
    fn categorical_rows_follow_optuna_and_sample_their_probabilities() {
        let dims = [DimSpec::Categorical { n: 3 }];
        // Three observations (choice 2 twice, one missing) give fill = 1/4 and rows
        // (1/4 + [c = 2]) / (3/4 + 1) = 5/7 at 2 and 1/7 elsewhere; the missing one and the
        // prior are uniform. The four components weigh 1/4 each.
        let est = ParzenEstimator::new(&dims, &[2.0, 2.0, f64::NAN], &[1.0; 3], &PARAMS);
        let p = densities(&est, &[0.0, 1.0, 2.0]);
        let expect_hit = 0.25 * (2.0 * 5.0 / 7.0 + 2.0 / 3.0);
        let expect_miss = 0.25 * (2.0 / 7.0 + 2.0 / 3.0);
        assert!((p[2] - expect_hit).abs() < 1e-12, "{p:?}");
        assert!((p[0] - expect_miss).abs() < 1e-12 && (p[1] - expect_miss).abs() < 1e-12);
        let mut rng = Rng::seed_from_u64(9);
        let mut draws = Vec::new();
        est.sample(&mut rng, 60_000, &mut draws);
        let share = draws.iter().filter(|c| **c == 2.0).count() as f64 / draws.len() as f64;
        assert!(
            (share - expect_hit).abs() < 0.01,
            "choice 2 drawn {share}, density {expect_hit}"
        );
    }

    #[test]
    fn samples_concentrate_around_the_observations() {
        let dims = [DimSpec::Numeric {
            low: 0.0,
            high: 100.0,
            step: 0.0,
            log: false,
        }];
        let rows = vec![30.0; 20];
        let est = ParzenEstimator::new(&dims, &rows, &[1.0; 20], &PARAMS);
        let mut rng = Rng::seed_from_u64(1);
        let mut out = Vec::new();
        est.sample(&mut rng, 1000, &mut out);
        assert!(out.iter().all(|x| (0.0..=100.0).contains(x)));
        let near = out.iter().filter(|x| (**x - 30.0).abs() < 10.0).count();
        assert!(
            near > 800,
            "only {near} of 1000 draws within 10 of the observations"
        );
    }

    #[test]
    fn sigmas_follow_the_neighbour_rule() {
        let s = neighbour_sigmas(&[5.0, 1.0, f64::NAN, 2.0], 0.0, 10.0, false);
        // Sorted 1, 2, 5: the extremes look inwards only, the middle takes its larger gap.
        assert_eq!(s[1], 1.0);
        assert_eq!(s[3], 3.0);
        assert_eq!(s[0], 3.0);
        assert!(s[2].is_nan());
        let with_ends = neighbour_sigmas(&[5.0, 1.0, 2.0], 0.0, 10.0, true);
        assert_eq!(with_ends, vec![5.0, 1.0, 3.0]);
        assert_eq!(neighbour_sigmas(&[2.0], 0.0, 10.0, false), vec![8.0]);
    }
}
