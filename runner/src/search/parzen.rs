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
//!
//! An estimator can grow by one observation at a time ([`ParzenEstimator::push`]), which is what
//! the constant liar does after every proposal of a batch. Growing gives bit for bit the estimator
//! that [`ParzenEstimator::new`] builds from all the rows: the sorted order of each dimension is
//! kept, every σ is recomputed by the same rule, and only the kernels whose σ changed recompute
//! their normalising mass.

use std::collections::HashMap;

use super::normal::{LN_SQRT_2PI, TruncNormal, log_gauss_mass};
use super::space::DimSpec;
use crate::rng::Rng;

/// Knobs of the estimator (the Parzen part of [`super::TpeOptions`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ParzenParams {
    pub(crate) prior_weight: f64,
    pub(crate) consider_magic_clip: bool,
    pub(crate) consider_endpoints: bool,
    /// Observations outside this estimator that the magic clip counts as well (0 = Optuna's
    /// rule, which counts this estimator's kernels only).
    pub(crate) clip_extra: usize,
}

/// Kernels of one dimension, for every component (observations first, prior last).
#[derive(Debug, Clone)]
enum DimKernels {
    Numeric(Box<NumericKernels>),
    Categorical(CategoricalKernels),
}

/// A weighted mixture of product kernels over the modelled dimensions.
///
/// Sampling and evaluating take `&mut self`: the estimator memoises what repeated calls share
/// (each kernel's truncated normal, each grid kernel shape's masses at the grid values met).
#[derive(Debug, Clone)]
pub(crate) struct ParzenEstimator {
    prior_weight: f64,
    log_w: Vec<f64>,
    cum_w: Vec<f64>,
    dims: Vec<DimKernels>,
    /// Bounds for skipping components in `log_pdf`; `None` until first needed after a change.
    pruning: Option<Pruning>,
    /// One log term per component while evaluating a point.
    acc: Vec<f64>,
    /// The components a point is evaluated on after pruning.
    kept: Vec<usize>,
}

/// Below this many components `log_pdf` evaluates every component (pruning would not pay).
const MIN_COMPONENTS_TO_PRUNE: usize = 32;

/// When pruning keeps more than this share of the components for a point (numerator,
/// denominator), `log_pdf` evaluates the rest of its points in full.
const MAX_KEPT_SHARE: (usize, usize) = (1, 4);

/// `log_sum_exp` leaves out the terms more than this far below the largest one.
const NEGLIGIBLE: f64 = 40.0;

/// What lets `log_pdf` skip the components that cannot matter for a point.
///
/// A component's log term is its log weight plus one log term per dimension, summed in dimension
/// order. `log_pdf` sums the leading dimensions, up to the last continuous one, for every
/// component. The trailing (grid and categorical) dimensions' terms have a cap that holds at
/// every point: a categorical row's largest log probability, and for a grid kernel's log mass, 0.
/// The component with the largest leading sum, completed exactly, bounds the maximum from below.
/// A component whose leading sum plus the caps lies more than [`NEGLIGIBLE`] below that is one
/// `log_sum_exp` leaves out anyway, and it cannot be the maximum: skipping it changes no bit of
/// the result. The bounds are kept a further [`PRUNE_MARGIN`] apart, which covers the rounding of
/// the sums and the 1e-5 by which the approximate normal CDF can put a grid log mass above 0.
#[derive(Debug, Clone, Copy)]
struct Pruning {
    /// Number of leading dimensions summed for every component.
    leading: usize,
    /// Sum of the trailing dimensions' caps.
    trailing_cap: f64,
}

/// Extra distance between the bounds before a component is skipped (absolute, plus relative to
/// the bound's magnitude).
const PRUNE_MARGIN: (f64, f64) = (1.0, 1e-9);

impl ParzenEstimator {
    /// Builds the estimator from `rows` (row-major raw values, `dims.len()` per row, `NaN` =
    /// missing) with one non-negative `weights` entry per row, oldest first.
    #[cfg(test)]
    pub(crate) fn new(
        dims: &[DimSpec],
        rows: &[f64],
        weights: &[f64],
        params: &ParzenParams,
    ) -> Self {
        Self::with_room(dims, rows, weights, params, 0)
    }

    /// [`ParzenEstimator::new`] with room for `room` observations to be pushed without
    /// reallocating.
    pub(crate) fn with_room(
        dims: &[DimSpec],
        rows: &[f64],
        weights: &[f64],
        params: &ParzenParams,
        room: usize,
    ) -> Self {
        let d = dims.len();
        let n_obs = weights.len();
        debug_assert_eq!(rows.len(), n_obs * d);
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
                    } => DimKernels::Numeric(Box::new(NumericKernels::new(
                        Grid {
                            low,
                            high,
                            step,
                            log,
                        },
                        column,
                        params,
                        room,
                    ))),
                    DimSpec::Categorical { n } => {
                        DimKernels::Categorical(CategoricalKernels::new(n, column, params, room))
                    }
                }
            })
            .collect();
        let mut est = Self {
            prior_weight: params.prior_weight,
            log_w: Vec::with_capacity(n_obs + 1 + room),
            cum_w: Vec::with_capacity(n_obs + 1 + room),
            dims,
            pruning: None,
            acc: Vec::new(),
            kept: Vec::new(),
        };
        est.set_weights(weights);
        est
    }

    /// Adds the observation `row` (raw values, one per dimension) as the newest member;
    /// `weights` are the weights of all members after the addition, oldest first. The result is
    /// the estimator [`ParzenEstimator::new`] would build from all the rows.
    pub(crate) fn push(&mut self, row: &[f64], weights: &[f64]) {
        debug_assert_eq!(row.len(), self.dims.len());
        debug_assert_eq!(weights.len(), self.n_components());
        for (dim, &x) in self.dims.iter_mut().zip(row) {
            match dim {
                DimKernels::Numeric(kern) => kern.push(x),
                DimKernels::Categorical(kern) => kern.push(x),
            }
        }
        self.set_weights(weights);
    }

    /// Normalises the observation weights plus the prior's into `log_w` and `cum_w`.
    fn set_weights(&mut self, weights: &[f64]) {
        self.pruning = None;
        let prior = [if weights.is_empty() {
            1.0
        } else {
            self.prior_weight
        }];
        let w = || weights.iter().chain(&prior).copied();
        let n = weights.len() + 1;
        let total: f64 = w().sum();
        let normalise = |x: f64| {
            if total > 0.0 && total.is_finite() {
                x / total
            } else {
                1.0 / n as f64
            }
        };
        self.cum_w.clear();
        self.log_w.clear();
        let mut acc = 0.0;
        // Weights repeat (all 1 but the oldest members): take each run's logarithm once.
        let mut last = (f64::NAN, f64::NAN);
        for x in w().map(normalise) {
            acc += x;
            self.cum_w.push(acc);
            if x.to_bits() != last.0.to_bits() {
                last = (x, x.ln());
            }
            self.log_w.push(last.1);
        }
    }

    /// Number of mixture components (observations plus the prior).
    pub(crate) fn n_components(&self) -> usize {
        self.log_w.len()
    }

    /// Draws `m` points (row-major raw values) from the mixture into `out`: per point, the
    /// component, then one quantile per dimension, all from `rng`.
    pub(crate) fn sample(&mut self, rng: &mut Rng, m: usize, out: &mut Vec<f64>) {
        out.clear();
        out.reserve(m * self.dims.len());
        let last = self.cum_w.len() - 1;
        for _ in 0..m {
            let u = rng.next_f64() * self.cum_w[last];
            let k = self.cum_w.partition_point(|c| *c <= u).min(last);
            for dim in &mut self.dims {
                out.push(match dim {
                    DimKernels::Numeric(kern) => kern.sample(k, rng),
                    DimKernels::Categorical(kern) => kern.sample(k, rng) as f64,
                });
            }
        }
    }

    /// Log density of each of the `points.len() / dims` points (row-major raw values) into `out`.
    pub(crate) fn log_pdf(&mut self, points: &[f64], out: &mut Vec<f64>) {
        out.clear();
        let d = self.dims.len();
        if d == 0 {
            return;
        }
        if self.pruning.is_none() {
            self.pruning = self.pruning_bounds();
        }
        let (mut acc, mut kept) = (
            std::mem::take(&mut self.acc),
            std::mem::take(&mut self.kept),
        );
        acc.resize(self.n_components(), 0.0);
        // Both ways give the same bits; pruning stops once it keeps too much to pay.
        let mut prune = self.pruning.is_some();
        for point in points.chunks_exact(d) {
            let inside = self.dims.iter().zip(point).all(|(dim, &x)| dim.contains(x));
            out.push(if !inside {
                // Every component gives the point zero density.
                f64::NEG_INFINITY
            } else if prune {
                let density = self.log_pdf_pruned(point, &mut acc, &mut kept);
                prune = kept.len() * MAX_KEPT_SHARE.1 <= acc.len() * MAX_KEPT_SHARE.0;
                density
            } else {
                self.log_pdf_full(point, &mut acc)
            });
        }
        (self.acc, self.kept) = (acc, kept);
    }

    /// Log density of a point inside the support, from every component; `acc` holds one log term
    /// per component.
    fn log_pdf_full(&mut self, point: &[f64], acc: &mut [f64]) -> f64 {
        acc.copy_from_slice(&self.log_w);
        for (dim, &x) in self.dims.iter_mut().zip(point) {
            dim.add_log_pdf(x, acc);
        }
        log_sum_exp(acc)
    }

    /// [`ParzenEstimator::log_pdf_full`] from the components that can matter (see [`Pruning`]).
    fn log_pdf_pruned(&mut self, point: &[f64], acc: &mut [f64], kept: &mut Vec<usize>) -> f64 {
        let Some(Pruning {
            leading,
            trailing_cap,
        }) = self.pruning
        else {
            return self.log_pdf_full(point, acc);
        };
        acc.copy_from_slice(&self.log_w);
        for (dim, &x) in self.dims[..leading].iter_mut().zip(point) {
            dim.add_log_pdf(x, acc);
        }
        let best = argmax(acc);
        let mut best_total = [acc[best]];
        self.add_trailing_log_pdf(point, leading, &[best], &mut best_total);
        let floor = best_total[0] - NEGLIGIBLE - trailing_cap;
        let floor = floor - PRUNE_MARGIN.0 - PRUNE_MARGIN.1 * floor.abs();
        keep_not_below(acc, floor, kept);
        for (i, &k) in kept.iter().enumerate() {
            acc[i] = acc[k];
        }
        let vals = &mut acc[..kept.len()];
        self.add_trailing_log_pdf(point, leading, kept, vals);
        log_sum_exp(vals)
    }

    /// Adds the log terms of the dimensions from `leading` on, for the components `kept`, to
    /// `vals`.
    fn add_trailing_log_pdf(
        &mut self,
        point: &[f64],
        leading: usize,
        kept: &[usize],
        vals: &mut [f64],
    ) {
        for (dim, &x) in self.dims.iter_mut().zip(point).skip(leading) {
            dim.add_log_pdf_at(x, kept, vals);
        }
    }

    /// The pruning bounds, when there are enough components and a continuous dimension.
    fn pruning_bounds(&self) -> Option<Pruning> {
        if self.n_components() < MIN_COMPONENTS_TO_PRUNE {
            return None;
        }
        let leading = 1 + self.dims.iter().rposition(DimKernels::is_continuous)?;
        let trailing_cap = self.dims[leading..]
            .iter()
            .map(DimKernels::log_pdf_cap)
            .sum();
        Some(Pruning {
            leading,
            trailing_cap,
        })
    }
}

impl DimKernels {
    /// Whether `x` is inside the support (outside, every component gives it density zero).
    fn contains(&self, x: f64) -> bool {
        match self {
            DimKernels::Numeric(kern) => kern.contains(x),
            DimKernels::Categorical(kern) => CategoricalKernels::hit(kern.n, x).is_some(),
        }
    }

    /// Adds every component's log term at `x` (inside the support) to `acc`.
    fn add_log_pdf(&mut self, x: f64, acc: &mut [f64]) {
        match self {
            DimKernels::Numeric(kern) if kern.grid.step == 0.0 => {
                kern.add_continuous_log_pdf(x, acc)
            }
            DimKernels::Numeric(kern) => kern.add_grid_log_pdf(x, acc),
            DimKernels::Categorical(kern) => kern.add_log_pdf(x, acc),
        }
    }

    /// Adds the log term of component `kept[i]` at `x` (inside the support) to `vals[i]`, the
    /// same value [`DimKernels::add_log_pdf`] adds.
    fn add_log_pdf_at(&mut self, x: f64, kept: &[usize], vals: &mut [f64]) {
        match self {
            DimKernels::Numeric(kern) if kern.grid.step == 0.0 => {
                kern.add_continuous_log_pdf_at(x, kept, vals)
            }
            DimKernels::Numeric(kern) => kern.add_grid_log_pdf_at(x, kept, vals),
            DimKernels::Categorical(kern) => kern.add_log_pdf_at(x, kept, vals),
        }
    }

    /// Whether the dimension is numeric and continuous.
    fn is_continuous(&self) -> bool {
        matches!(self, DimKernels::Numeric(kern) if kern.grid.step == 0.0)
    }

    /// A cap on every component's log term at every point, for grid and categorical dimensions
    /// (see [`Pruning`]).
    fn log_pdf_cap(&self) -> f64 {
        match self {
            // A log mass is at most 0 (continuous dimensions have no cap, and are not asked).
            DimKernels::Numeric(_) => 0.0,
            DimKernels::Categorical(kern) => kern.log_hit.max(kern.log_miss).max(kern.log_uniform),
        }
    }
}

/// Grid and scale of a numeric dimension in the parameter's own units (step 0 = continuous).
#[derive(Debug, Clone, Copy)]
struct Grid {
    low: f64,
    high: f64,
    step: f64,
    log: bool,
}

impl Grid {
    /// The transformed value (log space for log parameters).
    fn t(&self, x: f64) -> f64 {
        if self.log { x.ln() } else { x }
    }
}

/// One distinct `(μ, σ)` of a grid dimension's kernels.
#[derive(Debug, Clone, Copy)]
struct Shape {
    mu: f64,
    inv_sigma: f64,
    /// `−ln Z`, `Z` the kernel's mass inside the support.
    log_norm: f64,
}

/// Grid kernels share shapes (observations of a grid parameter repeat, and so do their σ):
/// masses are computed once per distinct `(μ, σ)` and grid value.
#[derive(Debug, Clone, Default)]
struct GridShapes {
    /// The shape of each component.
    of: Vec<usize>,
    /// Every shape met so far (some may no longer be used after a σ changed).
    list: Vec<Shape>,
    /// Shape index by the bits of `(μ, σ)`.
    index: HashMap<(u64, u64), usize>,
    /// The grid values evaluated so far, each with the log masses of the first shapes of
    /// `list` there (extended when shapes are added).
    rows: Vec<(f64, Vec<f64>)>,
}

#[derive(Debug, Clone)]
struct NumericKernels {
    grid: Grid,
    /// Support of the kernels in the transformed space.
    lo_t: f64,
    hi_t: f64,
    prior_mu: f64,
    consider_magic_clip: bool,
    consider_endpoints: bool,
    clip_extra: usize,
    /// Transformed observations, oldest first (`NaN` = missing).
    obs: Vec<f64>,
    /// The valid observations as `(value, index)`, by value, ties by age.
    sorted: Vec<(f64, usize)>,
    /// The smallest σ an observation's kernel may have (it depends on their number).
    min_sigma: f64,
    /// Per component (observations, then the prior).
    mu: Vec<f64>,
    sigma: Vec<f64>,
    inv_sigma: Vec<f64>,
    /// `−ln σ − ln√(2π) − ln Z` for continuous kernels, `−ln Z` for grid kernels, where `Z` is
    /// the kernel's mass inside the support.
    log_norm: Vec<f64>,
    /// Grid dimensions only.
    shapes: GridShapes,
    /// Each component's kernel as a standard truncated normal, once drawn from.
    trunc: Vec<Option<TruncNormal>>,
}

impl NumericKernels {
    fn new(
        grid: Grid,
        column: impl Iterator<Item = f64>,
        params: &ParzenParams,
        room: usize,
    ) -> Self {
        let (lo_t, hi_t) = (
            grid.t(grid.low - grid.step / 2.0),
            grid.t(grid.high + grid.step / 2.0),
        );
        let mut obs: Vec<f64> = Vec::with_capacity(column.size_hint().0 + room);
        obs.extend(column.map(|x| if x.is_nan() { x } else { grid.t(x) }));
        let mut sorted: Vec<(f64, usize)> = Vec::with_capacity(obs.len() + room);
        sorted.extend(
            obs.iter()
                .enumerate()
                .filter(|(_, m)| !m.is_nan())
                .map(|(i, m)| (*m, i)),
        );
        sorted.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let kc = obs.len() + 1;
        let mut kern = Self {
            grid,
            lo_t,
            hi_t,
            prior_mu: 0.5 * (lo_t + hi_t),
            consider_magic_clip: params.consider_magic_clip,
            consider_endpoints: params.consider_endpoints,
            clip_extra: params.clip_extra,
            obs,
            sorted,
            min_sigma: f64::NAN,
            mu: filled(kc, room, f64::NAN),
            sigma: filled(kc, room, f64::NAN),
            inv_sigma: filled(kc, room, f64::NAN),
            log_norm: filled(kc, room, f64::NAN),
            shapes: GridShapes::default(),
            trunc: filled(kc, room, None),
        };
        if grid.step != 0.0 {
            kern.shapes.of = filled(kc, room, 0);
        }
        for i in 0..kc {
            if kern.obs.get(i).is_none_or(|x| x.is_nan()) {
                kern.set_kernel(i, kern.prior_mu, kern.range());
            }
        }
        kern.min_sigma = kern.clip();
        kern.refresh_sigmas(0..kern.sorted.len(), 0);
        kern
    }

    /// The smallest σ for the current number of valid observations.
    fn clip(&self) -> f64 {
        if self.consider_magic_clip {
            let n_kernels = self.sorted.len() + 1 + self.clip_extra;
            self.range() / (1.0 + n_kernels as f64).min(100.0)
        } else {
            1e-12
        }
    }

    fn range(&self) -> f64 {
        self.hi_t - self.lo_t
    }

    /// Adds an observation (raw value, `NaN` = missing) as the newest component before the prior.
    fn push(&mut self, x: f64) {
        let i = self.obs.len();
        let xt = if x.is_nan() { x } else { self.grid.t(x) };
        self.obs.push(xt);
        // The prior moves one place up; component `i` is the new observation.
        self.mu.push(self.mu[i]);
        self.sigma.push(self.sigma[i]);
        self.inv_sigma.push(self.inv_sigma[i]);
        self.log_norm.push(self.log_norm[i]);
        self.trunc.push(self.trunc[i]);
        if self.grid.step != 0.0 {
            self.shapes.of.push(self.shapes.of[i]);
        }
        if xt.is_nan() {
            // Missing here: the prior's kernel, and no σ changes.
            return;
        }
        let at = self.sorted.partition_point(|e| e.0.total_cmp(&xt).is_le());
        self.sorted.insert(at, (xt, i));
        let n = self.sorted.len();
        let clip = self.clip();
        if clip.to_bits() == self.min_sigma.to_bits() && n > 3 {
            // Only the new observation and its two neighbours have new gaps (the extreme
            // observations' rule included, as long as there are more than two).
            self.refresh_sigmas(at.saturating_sub(1)..(at + 2).min(n), i);
        } else {
            self.min_sigma = clip;
            self.refresh_sigmas(0..n, i);
        }
    }

    /// Recomputes the σ of the observations at `ranks` in sorted order by the neighbour rule and
    /// updates the kernels whose σ changed; components from `fresh` on are set whatever their
    /// previous σ.
    fn refresh_sigmas(&mut self, ranks: std::ops::Range<usize>, fresh: usize) {
        let (range, min_sigma) = (self.range(), self.min_sigma);
        for r in ranks {
            let s = neighbour_sigma(
                &self.sorted,
                r,
                self.lo_t,
                self.hi_t,
                self.consider_endpoints,
            );
            let sigma = s.clamp(min_sigma, range);
            let (mu, i) = self.sorted[r];
            if i >= fresh || sigma.to_bits() != self.sigma[i].to_bits() {
                self.set_kernel(i, mu, sigma);
            }
        }
    }

    /// Sets component `i` to the kernel `(mu, sigma)` with its normalisation.
    fn set_kernel(&mut self, i: usize, mu: f64, sigma: f64) {
        self.mu[i] = mu;
        self.sigma[i] = sigma;
        self.inv_sigma[i] = 1.0 / sigma;
        self.trunc[i] = None;
        let (a, b) = ((self.lo_t - mu) / sigma, (self.hi_t - mu) / sigma);
        if self.grid.step == 0.0 {
            self.log_norm[i] = -sigma.ln() - LN_SQRT_2PI - log_gauss_mass(a, b);
            return;
        }
        let shapes = &mut self.shapes;
        let next = shapes.list.len();
        let shape = *shapes
            .index
            .entry((mu.to_bits(), sigma.to_bits()))
            .or_insert(next);
        if shape == next {
            shapes.list.push(Shape {
                mu,
                inv_sigma: 1.0 / sigma,
                log_norm: -log_gauss_mass(a, b),
            });
        }
        shapes.of[i] = shape;
        self.log_norm[i] = shapes.list[shape].log_norm;
    }

    /// Draws from component `k`.
    fn sample(&mut self, k: usize, rng: &mut Rng) -> f64 {
        let (mu, sigma) = (self.mu[k], self.sigma[k]);
        let (lo_t, hi_t) = (self.lo_t, self.hi_t);
        let trunc = self.trunc[k]
            .get_or_insert_with(|| TruncNormal::new((lo_t - mu) / sigma, (hi_t - mu) / sigma));
        let z = trunc.ppf(rng.next_f64());
        let Grid {
            low,
            high,
            step,
            log,
        } = self.grid;
        let xt = (mu + sigma * z).clamp(self.lo_t, self.hi_t);
        let x = if log { xt.exp() } else { xt };
        if step == 0.0 {
            x.clamp(low, high)
        } else {
            let n = ((x - low) / step).round();
            (low + n * step).clamp(low, high)
        }
    }

    /// Whether `x` is inside the kernels' support.
    fn contains(&self, x: f64) -> bool {
        let xt = self.grid.t(x);
        self.grid.step != 0.0 || (xt >= self.lo_t && xt <= self.hi_t)
    }

    /// Adds each continuous kernel's log density at `x` to `acc`.
    fn add_continuous_log_pdf(&self, x: f64, acc: &mut [f64]) {
        let xt = self.grid.t(x);
        for (((a, &mu), &inv), &norm) in acc
            .iter_mut()
            .zip(&self.mu)
            .zip(&self.inv_sigma)
            .zip(&self.log_norm)
        {
            *a += continuous_log_pdf(xt, mu, inv, norm);
        }
    }

    /// [`NumericKernels::add_continuous_log_pdf`] for the components `kept`, into `vals`.
    fn add_continuous_log_pdf_at(&self, x: f64, kept: &[usize], vals: &mut [f64]) {
        let xt = self.grid.t(x);
        for (v, &k) in vals.iter_mut().zip(kept) {
            *v += continuous_log_pdf(xt, self.mu[k], self.inv_sigma[k], self.log_norm[k]);
        }
    }

    /// Adds each grid kernel's log mass at grid value `x` to `acc`.
    fn add_grid_log_pdf(&mut self, x: f64, acc: &mut [f64]) {
        let r = self.shapes.evaluate_at(self.grid, x);
        let masses = &self.shapes.rows[r].1;
        for (a, &shape) in acc.iter_mut().zip(&self.shapes.of) {
            *a += masses[shape];
        }
    }

    /// [`NumericKernels::add_grid_log_pdf`] for the components `kept`, into `vals`.
    fn add_grid_log_pdf_at(&mut self, x: f64, kept: &[usize], vals: &mut [f64]) {
        let r = self.shapes.evaluate_at(self.grid, x);
        let masses = &self.shapes.rows[r].1;
        for (v, &k) in vals.iter_mut().zip(kept) {
            *v += masses[self.shapes.of[k]];
        }
    }
}

/// Log density at `xt` of the kernel with mean `mu`, inverse width `inv` and normaliser `norm`.
#[inline]
fn continuous_log_pdf(xt: f64, mu: f64, inv: f64, norm: f64) -> f64 {
    let z = (xt - mu) * inv;
    norm - 0.5 * z * z
}

impl GridShapes {
    /// Makes sure every shape's log mass at grid value `x` is in `rows` (each computed once per
    /// shape and value) and returns the index of `x`'s row.
    fn evaluate_at(&mut self, grid: Grid, x: f64) -> usize {
        let r = match self
            .rows
            .iter()
            .position(|(v, _)| v.to_bits() == x.to_bits())
        {
            Some(r) => r,
            None => {
                self.rows.push((x, Vec::new()));
                self.rows.len() - 1
            }
        };
        let row = &mut self.rows[r].1;
        if row.len() < self.list.len() {
            let (l, h) = (grid.t(x - grid.step / 2.0), grid.t(x + grid.step / 2.0));
            row.extend(self.list[row.len()..].iter().map(|s| {
                log_gauss_mass((l - s.mu) * s.inv_sigma, (h - s.mu) * s.inv_sigma) + s.log_norm
            }));
        }
        r
    }
}

/// `n` copies of `value`, with room for `room` more.
fn filled<T: Clone>(n: usize, room: usize, value: T) -> Vec<T> {
    let mut v = Vec::with_capacity(n + room);
    v.resize(n, value);
    v
}

/// Optuna's σ rule for the observation at position `r` of `sorted` (the valid observations by
/// value): the larger gap to its neighbours, the bounds `lo` and `hi` counting as neighbours.
fn neighbour_sigma(
    sorted: &[(f64, usize)],
    r: usize,
    lo: f64,
    hi: f64,
    consider_endpoints: bool,
) -> f64 {
    let n = sorted.len();
    let left = sorted[r].0 - if r == 0 { lo } else { sorted[r - 1].0 };
    let right = if r + 1 == n { hi } else { sorted[r + 1].0 } - sorted[r].0;
    if !consider_endpoints && n >= 2 {
        if r == 0 {
            return right;
        }
        if r + 1 == n {
            return left;
        }
    }
    left.max(right)
}

/// Categorical kernels: per component, the observed choice (none for a missing observation and
/// for the prior, whose rows are uniform).
#[derive(Debug, Clone)]
struct CategoricalKernels {
    n: usize,
    prior_weight: f64,
    /// The weight every choice gets in an observation's row before normalising.
    fill: f64,
    /// Log probability of the observed choice in an observation's row.
    log_hit: f64,
    /// Log probability of every other choice in an observation's row.
    log_miss: f64,
    /// Log probability of every choice in a uniform row.
    log_uniform: f64,
    /// The observed choice per component, prior last.
    hits: Vec<Option<usize>>,
}

impl CategoricalKernels {
    fn new(
        n: usize,
        column: impl Iterator<Item = f64>,
        params: &ParzenParams,
        room: usize,
    ) -> Self {
        let mut hits = Vec::with_capacity(column.size_hint().0 + 1 + room);
        hits.extend(column.map(|c| Self::hit(n, c)));
        hits.push(None);
        let mut kern = Self {
            n,
            prior_weight: params.prior_weight,
            fill: 0.0,
            log_hit: 0.0,
            log_miss: 0.0,
            log_uniform: -(n as f64).ln(),
            hits,
        };
        kern.set_rows();
        kern
    }

    /// The choice a raw value names, if any.
    fn hit(n: usize, c: f64) -> Option<usize> {
        (c >= 0.0 && (c as usize) < n).then_some(c as usize)
    }

    /// Optuna's row for an observation is `fill` everywhere plus 1 at the observed choice,
    /// normalised, with `fill = prior_weight / (n_observations + 1)`.
    fn set_rows(&mut self) {
        let n_obs = self.hits.len() - 1;
        self.fill = self.prior_weight / (n_obs + 1) as f64;
        let total = self.n as f64 * self.fill + 1.0;
        self.log_hit = ((self.fill + 1.0) / total).ln();
        self.log_miss = (self.fill / total).ln();
    }

    /// Adds an observation (raw value) as the newest component before the prior.
    fn push(&mut self, c: f64) {
        let prior = self.hits.len() - 1;
        self.hits.insert(prior, Self::hit(self.n, c));
        self.set_rows();
    }

    /// Draws a choice from component `k`.
    fn sample(&self, k: usize, rng: &mut Rng) -> usize {
        let (n, fill) = (self.n, self.fill);
        let u = rng.next_f64();
        let pick = match self.hits[k] {
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

    /// Log probability of choice `c` in the row of a component that observed `hit`.
    #[inline]
    fn log_p(&self, hit: Option<usize>, c: usize) -> f64 {
        match hit {
            Some(h) if h == c => self.log_hit,
            Some(_) => self.log_miss,
            None => self.log_uniform,
        }
    }

    /// Adds each component's log probability of choice `c` (a raw value naming a choice) to `acc`.
    fn add_log_pdf(&self, c: f64, acc: &mut [f64]) {
        let c = c as usize;
        for (a, &hit) in acc.iter_mut().zip(&self.hits) {
            *a += self.log_p(hit, c);
        }
    }

    /// [`CategoricalKernels::add_log_pdf`] for the components `kept`, into `vals`.
    fn add_log_pdf_at(&self, c: f64, kept: &[usize], vals: &mut [f64]) {
        let c = c as usize;
        for (v, &k) in vals.iter_mut().zip(kept) {
            *v += self.log_p(self.hits[k], c);
        }
    }
}

/// Index of a maximum (the first; NaN never wins; 0 when nothing beats −∞).
fn argmax(xs: &[f64]) -> usize {
    // Four running maxima, which the compiler keeps in vector registers.
    let mut lanes = [f64::NEG_INFINITY; 4];
    let chunks = xs.chunks_exact(4);
    for &x in chunks.remainder() {
        lanes[0] = if x > lanes[0] { x } else { lanes[0] };
    }
    for chunk in chunks {
        for (m, &x) in lanes.iter_mut().zip(chunk) {
            *m = if x > *m { x } else { *m };
        }
    }
    let max = lanes
        .into_iter()
        .fold(f64::NEG_INFINITY, |m, x| if x > m { x } else { m });
    // Find its block without branching per entry, then its place in the block.
    const BLOCK: usize = 8;
    xs.chunks(BLOCK)
        .position(|block| block.iter().fold(false, |hit, &x| hit | (x == max)))
        .and_then(|b| {
            let start = b * BLOCK;
            xs[start..]
                .iter()
                .position(|&x| x == max)
                .map(|i| start + i)
        })
        .unwrap_or(0)
}

/// Whether `x` is not below `floor` (true when either is NaN).
#[inline]
fn not_below(x: f64, floor: f64) -> bool {
    x.partial_cmp(&floor) != Some(std::cmp::Ordering::Less)
}

/// Sets `kept` to the indices of the entries of `xs` that are not below `floor` (NaN entries
/// are kept), in order.
fn keep_not_below(xs: &[f64], floor: f64, kept: &mut Vec<usize>) {
    const BLOCK: usize = 8;
    kept.clear();
    let blocks = xs.chunks_exact(BLOCK);
    let tail = xs.len() - blocks.remainder().len();
    for (b, block) in blocks.enumerate() {
        // Most blocks keep nothing: test the whole block without branching first.
        if block
            .iter()
            .fold(false, |any, &x| any | not_below(x, floor))
        {
            let start = b * BLOCK;
            kept.extend((start..start + BLOCK).filter(|&k| not_below(xs[k], floor)));
        }
    }
    kept.extend((tail..xs.len()).filter(|&k| not_below(xs[k], floor)));
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
        clip_extra: 0,
    };

    fn densities(est: &mut ParzenEstimator, points: &[f64]) -> Vec<f64> {
        let mut out = Vec::new();
        est.log_pdf(points, &mut out);
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
        let mut est = ParzenEstimator::new(&dims, &rows, &[1.0; 5], &PARAMS);
        let n = 20_000;
        let h = 15.0 / n as f64;
        let grid: Vec<f64> = (0..n).map(|i| -5.0 + (i as f64 + 0.5) * h).collect();
        let total: f64 = densities(&mut est, &grid).iter().sum::<f64>() * h;
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
        let mut est = ParzenEstimator::new(&dims, &rows, &[1.0; 3], &PARAMS);
        let (a, b) = (1e-5f64.ln(), 1e-1f64.ln());
        let n = 20_000;
        let h = (b - a) / n as f64;
        let grid: Vec<f64> = (0..n).map(|i| (a + (i as f64 + 0.5) * h).exp()).collect();
        let total: f64 = densities(&mut est, &grid).iter().sum::<f64>() * h;
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
        let mut est = ParzenEstimator::new(&dims, &rows, &[1.0, 0.5, 1.0], &PARAMS);
        let n = 400;
        let h = 1.0 / n as f64;
        let mut grid = Vec::with_capacity(2 * n * n);
        for i in 0..n {
            for j in 0..n {
                grid.extend([(i as f64 + 0.5) * h, (j as f64 + 0.5) * h]);
            }
        }
        let total: f64 = densities(&mut est, &grid).iter().sum::<f64>() * h * h;
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
        let mut est = ParzenEstimator::new(&dims, &rows, &[1.0; 3], &PARAMS);
        let mut grid = Vec::new();
        for a in 1..=8 {
            for b in 1..=64 {
                for c in 0..4 {
                    grid.extend([a as f64, b as f64, c as f64]);
                }
            }
        }
        let total: f64 = densities(&mut est, &grid).iter().sum();
        assert!((total - 1.0).abs() < 1e-6, "total mass {total}");
    }

    #[test]
    fn categorical_rows_follow_optuna_and_sample_their_probabilities() {
        let dims = [DimSpec::Categorical { n: 3 }];
        // Three observations (choice 2 twice, one missing) give fill = 1/4 and rows
        // (1/4 + [c = 2]) / (3/4 + 1) = 5/7 at 2 and 1/7 elsewhere; the missing one and the
        // prior are uniform. The four components weigh 1/4 each.
        let mut est = ParzenEstimator::new(&dims, &[2.0, 2.0, f64::NAN], &[1.0; 3], &PARAMS);
        let p = densities(&mut est, &[0.0, 1.0, 2.0]);
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
        let mut est = ParzenEstimator::new(&dims, &rows, &[1.0; 20], &PARAMS);
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

    /// σ of each observation (`NaN` = missing) by the neighbour rule, before clipping.
    fn neighbour_sigmas(mus: &[f64], lo: f64, hi: f64, consider_endpoints: bool) -> Vec<f64> {
        let mut sorted: Vec<(f64, usize)> = mus
            .iter()
            .enumerate()
            .filter(|(_, m)| !m.is_nan())
            .map(|(i, m)| (*m, i))
            .collect();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut sigmas = vec![f64::NAN; mus.len()];
        for r in 0..sorted.len() {
            sigmas[sorted[r].1] = neighbour_sigma(&sorted, r, lo, hi, consider_endpoints);
        }
        sigmas
    }

    #[test]
    fn growing_gives_bit_for_bit_the_estimator_built_from_all_rows() {
        let dims = [
            DimSpec::Numeric {
                low: -5.0,
                high: 10.0,
                step: 0.0,
                log: false,
            },
            DimSpec::Numeric {
                low: 1e-4,
                high: 1e-1,
                step: 0.0,
                log: true,
            },
            DimSpec::Numeric {
                low: 1.0,
                high: 8.0,
                step: 1.0,
                log: false,
            },
            DimSpec::Categorical { n: 3 },
        ];
        let row = |i: usize| {
            let f = i as f64;
            let missing = |k: usize| i % k == 3;
            [
                if missing(11) {
                    f64::NAN
                } else {
                    -5.0 + (f * 0.618_034 % 1.0) * 15.0
                },
                if missing(13) {
                    f64::NAN
                } else {
                    10f64.powf(-4.0 + (f * 0.414_214 % 1.0) * 3.0)
                },
                (1 + (i * 5) % 8) as f64,
                if missing(7) {
                    f64::NAN
                } else {
                    ((i * 7) % 3) as f64
                },
            ]
        };
        // Oldest lightest, and every weight changes as the group grows, as with the ramp.
        let weights =
            |n: usize| -> Vec<f64> { (0..n).map(|i| (i + 1) as f64 / n as f64).collect() };
        let mut points = Vec::new();
        for i in 0..40 {
            points.extend(row(1000 + i).map(|x| if x.is_nan() { 0.5 } else { x }));
        }
        points.extend([
            11.0, 0.01, 3.0, 1.0, 0.0, 0.01, 3.5, 1.0, 0.0, 0.01, 3.0, 7.0,
        ]);
        for params in [
            PARAMS,
            ParzenParams {
                prior_weight: 0.5,
                consider_magic_clip: false,
                consider_endpoints: true,
                clip_extra: 0,
            },
            ParzenParams {
                clip_extra: 37,
                ..PARAMS
            },
        ] {
            let n0 = 3;
            let rows: Vec<f64> = (0..140).flat_map(row).collect();
            let mut grown =
                ParzenEstimator::with_room(&dims, &rows[..n0 * 4], &weights(n0), &params, 2);
            for n in n0 + 1..=140 {
                grown.push(&row(n - 1), &weights(n));
                let mut built = ParzenEstimator::new(&dims, &rows[..n * 4], &weights(n), &params);
                let (mut a, mut b) = (Vec::new(), Vec::new());
                grown.log_pdf(&points, &mut a);
                built.log_pdf(&points, &mut b);
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&a), bits(&b), "{n} rows, {params:?}");
                grown.sample(&mut Rng::seed_from_u64(n as u64), 20, &mut a);
                built.sample(&mut Rng::seed_from_u64(n as u64), 20, &mut b);
                assert_eq!(bits(&a), bits(&b), "{n} rows, {params:?}");
            }
        }
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
