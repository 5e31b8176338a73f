//! Optimisers over one flat parameter vector.

use std::ops::Range;

use super::params::Optimizer;

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f32 = 1e-8;

/// Optimiser state for a parameter vector of fixed length.
#[derive(Debug, Clone)]
pub(crate) struct OptimizerState {
    kind: Optimizer,
    lr: f32,
    momentum: f32,
    weight_decay: f32,
    /// Ranges weight decay applies to (dense weights).
    decayed: Vec<Range<usize>>,
    /// First moment (Adam) or velocity (SGD).
    m: Vec<f32>,
    /// Second moment (Adam only).
    v: Vec<f32>,
    step: i32,
}

impl OptimizerState {
    /// Fresh state for `n` parameters.
    pub(crate) fn new(
        kind: Optimizer,
        lr: f64,
        momentum: f64,
        weight_decay: f64,
        decayed: Vec<Range<usize>>,
        n: usize,
    ) -> Self {
        let adam = kind != Optimizer::Sgd;
        OptimizerState {
            kind,
            lr: lr as f32,
            momentum: momentum as f32,
            weight_decay: weight_decay as f32,
            decayed,
            m: vec![0.0; n],
            v: if adam { vec![0.0; n] } else { Vec::new() },
            step: 0,
        }
    }

    /// Applies one update; `grads` may be modified (L2 terms are added in place).
    pub(crate) fn step(&mut self, params: &mut [f32], grads: &mut [f32]) {
        self.step += 1;
        let wd = self.weight_decay;
        if wd > 0.0 {
            for r in &self.decayed {
                let (p, g) = (&mut params[r.clone()], &mut grads[r.clone()]);
                if self.kind == Optimizer::AdamW {
                    let shrink = 1.0 - self.lr * wd;
                    p.iter_mut().for_each(|x| *x *= shrink);
                } else {
                    g.iter_mut().zip(p.iter()).for_each(|(g, x)| *g += wd * x);
                }
            }
        }
        match self.kind {
            Optimizer::Sgd => {
                let (lr, mu) = (self.lr, self.momentum);
                for ((p, g), m) in params.iter_mut().zip(grads.iter()).zip(self.m.iter_mut()) {
                    *m = mu * *m + g;
                    *p -= lr * *m;
                }
            }
            Optimizer::Adam | Optimizer::AdamW => {
                let bc1 = 1.0 - BETA1.powi(self.step);
                let bc2 = 1.0 - BETA2.powi(self.step);
                let step_size = (f64::from(self.lr) / bc1) as f32;
                let inv_sqrt_bc2 = (1.0 / bc2.sqrt()) as f32;
                let (b1, b2) = (BETA1 as f32, BETA2 as f32);
                let iter = params
                    .iter_mut()
                    .zip(grads.iter())
                    .zip(self.m.iter_mut().zip(self.v.iter_mut()));
                for ((p, &g), (m, v)) in iter {
                    *m = b1 * *m + (1.0 - b1) * g;
                    *v = b2 * *v + (1.0 - b2) * g * g;
                    *p -= step_size * *m / (v.sqrt() * inv_sqrt_bc2 + EPS);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Minimises f(x) = Σ (x_i − 3)² and returns the final parameters.
    fn minimise(kind: Optimizer, lr: f64, wd: f64, steps: usize) -> Vec<f32> {
        let mut p = vec![0.0_f32, 10.0];
        let decayed: Vec<Range<usize>> = std::iter::once(0..2).collect();
        let mut s = OptimizerState::new(kind, lr, 0.9, wd, decayed, 2);
        for _ in 0..steps {
            let mut g: Vec<f32> = p.iter().map(|x| 2.0 * (x - 3.0)).collect();
            s.step(&mut p, &mut g);
        }
        p
    }

    #[test]
    fn every_optimiser_finds_the_minimum_of_a_quadratic() {
        for kind in [Optimizer::Sgd, Optimizer::Adam, Optimizer::AdamW] {
            let p = minimise(kind, 0.05, 0.0, 2000);
            assert!(p.iter().all(|x| (x - 3.0).abs() < 1e-2), "{kind:?}: {p:?}");
        }
    }

    #[test]
    fn first_adam_step_moves_each_parameter_by_the_learning_rate() {
        let p = minimise(Optimizer::Adam, 0.1, 0.0, 1);
        assert!(
            (p[0] - 0.1).abs() < 1e-5 && (p[1] - 9.9).abs() < 1e-5,
            "{p:?}"
        );
    }

    #[test]
    fn weight_decay_pulls_the_optimum_towards_zero() {
        for kind in [Optimizer::Sgd, Optimizer::Adam, Optimizer::AdamW] {
            let p = minimise(kind, 0.01, 0.5, 5000);
            assert!(p.iter().all(|x| *x < 2.9 && *x > 0.5), "{kind:?}: {p:?}");
        }
    }
}
