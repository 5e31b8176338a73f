//! The materialised network: parameter layout, initialisation, forward and backward passes.
//!
//! Every unit (and the head) is one [`Layer`]: concatenate the source nodes' outputs, optionally
//! layer-normalise, optionally drop out, then `z = x · W + b` and `h = f(z)`. All parameters live
//! in one flat `f32` vector (per layer: norm gain, norm bias, `W` as `in × out` row-major, `b`), so
//! the optimiser updates one slice. Activations and gradients live in a reusable [`Workspace`].

use std::ops::Range;

use super::activation::Activation;
use super::gemm::sgemm;
use super::wiring::Wiring;
use crate::rng::Rng;

const NORM_EPS: f32 = 1e-5;

/// One dense layer with its concatenated inputs.
#[derive(Debug, Clone)]
pub(crate) struct Layer {
    /// Source nodes (0 is the network input) and their widths, in concatenation order.
    pub sources: Vec<(usize, usize)>,
    /// Width of the concatenation.
    pub in_width: usize,
    /// Width of the dense output.
    pub out_width: usize,
    /// Offset of `W` (`in_width × out_width`).
    pub weight: usize,
    /// Offset of `b` (`out_width`).
    pub bias: usize,
    /// Offset of the layer-norm gain (`in_width`), followed by its bias, when normalised.
    pub norm: Option<usize>,
    /// Dropout rate on the (normalised) input during training.
    pub dropout: f32,
    /// Output non-linearity (linear for the head).
    pub activation: Activation,
    /// Whether the backward pass needs the gradient with respect to the layer input.
    pub input_grad: bool,
}

/// Per-unit options shared by all hidden layers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UnitOptions {
    pub activation: Activation,
    pub normalization: bool,
    pub dropout: f32,
}

/// Layers in topological order; the last one is the head. Layer `i < last` produces node `i + 1`.
#[derive(Debug, Clone)]
pub(crate) struct Network {
    pub layers: Vec<Layer>,
    pub n_inputs: usize,
    pub n_outputs: usize,
    pub n_params: usize,
}

impl Network {
    /// Lays out parameters for `wiring` on `n_inputs` features with `n_outputs` head outputs.
    pub(crate) fn build(
        wiring: &Wiring,
        n_inputs: usize,
        n_outputs: usize,
        opts: UnitOptions,
    ) -> Network {
        let mut widths = vec![n_inputs];
        widths.extend(wiring.units.iter().map(|u| u.neurons));
        let mut offset = 0;
        let mut layers = Vec::with_capacity(wiring.units.len() + 1);
        let mut add = |inputs: &[usize], out_width: usize, hidden: bool| {
            let sources: Vec<(usize, usize)> = inputs.iter().map(|&n| (n, widths[n])).collect();
            let in_width = sources.iter().map(|s| s.1).sum();
            let norm = normalised(hidden && opts.normalization, inputs, in_width).then(|| {
                offset += 2 * in_width;
                offset - 2 * in_width
            });
            let weight = offset;
            let bias = weight + in_width * out_width;
            offset = bias + out_width;
            layers.push(Layer {
                input_grad: norm.is_some() || sources.iter().any(|s| s.0 != 0),
                sources,
                in_width,
                out_width,
                weight,
                bias,
                norm,
                dropout: if hidden { opts.dropout } else { 0.0 },
                activation: if hidden {
                    opts.activation
                } else {
                    Activation::Linear
                },
            });
        };
        for unit in &wiring.units {
            add(&unit.inputs, unit.neurons, true);
        }
        add(&wiring.head_inputs, n_outputs, false);
        Network {
            layers,
            n_inputs,
            n_outputs,
            n_params: offset,
        }
    }

    /// Parameter count of a wiring, without building it (to check size limits first).
    pub(crate) fn count_params(
        wiring: &Wiring,
        n_inputs: usize,
        n_outputs: usize,
        normalization: bool,
    ) -> u128 {
        let width = |n: usize| if n == 0 { n_inputs } else { wiring.units[n - 1].neurons } as u128;
        let layer = |inputs: &[usize], out: usize, hidden: bool| {
            let w: u128 = inputs.iter().map(|&n| width(n)).sum();
            let norm = if normalised(hidden && normalization, inputs, w as usize) {
                2 * w
            } else {
                0
            };
            norm + w * out as u128 + out as u128
        };
        wiring
            .units
            .iter()
            .map(|u| layer(&u.inputs, u.neurons, true))
            .sum::<u128>()
            + layer(&wiring.head_inputs, n_outputs, false)
    }

    /// Ranges of dense weights (the parameters weight decay applies to).
    pub(crate) fn weight_ranges(&self) -> Vec<Range<usize>> {
        self.layers
            .iter()
            .map(|l| l.weight..l.weight + l.in_width * l.out_width)
            .collect()
    }

    /// Seeded initial parameters: He normal weights for rectifier-like units, Glorot uniform for
    /// the others and the head; zero biases; unit norm gains.
    pub(crate) fn init(&self, rng: &mut Rng) -> Vec<f32> {
        let mut p = vec![0.0_f32; self.n_params];
        for l in &self.layers {
            if let Some(g) = l.norm {
                p[g..g + l.in_width].fill(1.0);
            }
            let w = &mut p[l.weight..l.weight + l.in_width * l.out_width];
            if l.activation.prefers_he_init() {
                let std = (2.0 / l.in_width as f64).sqrt();
                w.iter_mut().for_each(|x| *x = (std * rng.normal()) as f32);
            } else {
                let limit = (6.0 / (l.in_width + l.out_width) as f64).sqrt();
                w.iter_mut()
                    .for_each(|x| *x = rng.uniform(-limit, limit) as f32);
            }
        }
        p
    }

    /// Floats a workspace for `rows` rows needs (to check memory limits first).
    pub(crate) fn workspace_floats(&self, rows: usize) -> u128 {
        self.layers
            .iter()
            .map(|l| {
                let (i, o) = (l.in_width as u128, l.out_width as u128);
                let per_row = i * (1 + u128::from(l.norm.is_some()) + u128::from(l.dropout > 0.0))
                    + 4 * o
                    + if l.input_grad { i } else { 0 };
                per_row * rows as u128
            })
            .sum()
    }

    /// Runs `rows` rows of `x` (row-major, `n_inputs` wide) through the network. With `dropout`,
    /// training-mode dropout masks are drawn from it; without, dropout is off (inference).
    pub(crate) fn forward(
        &self,
        params: &[f32],
        x: &[f32],
        rows: usize,
        ws: &mut Workspace,
        mut dropout: Option<&mut Rng>,
    ) {
        assert!(
            rows <= ws.rows_cap && x.len() >= rows * self.n_inputs,
            "workspace too small"
        );
        for (li, layer) in self.layers.iter().enumerate() {
            let (done, rest) = ws.bufs.split_at_mut(li);
            let cur = &mut rest[0];
            let (iw, ow) = (layer.in_width, layer.out_width);
            let inp = &mut cur.inp[..rows * iw];
            for r in 0..rows {
                let dst = &mut inp[r * iw..(r + 1) * iw];
                let mut off = 0;
                for &(node, w) in &layer.sources {
                    let src = if node == 0 {
                        &x[r * w..(r + 1) * w]
                    } else {
                        &done[node - 1].h[r * w..(r + 1) * w]
                    };
                    dst[off..off + w].copy_from_slice(src);
                    off += w;
                }
            }
            if let Some(g) = layer.norm {
                let (gain, shift) = params[g..g + 2 * iw].split_at(iw);
                for r in 0..rows {
                    let row = &mut inp[r * iw..(r + 1) * iw];
                    let mean = lane_sum(row, |v| v) / iw as f32;
                    let var = lane_sum(row, |v| (v - mean) * (v - mean)) / iw as f32;
                    let inv = 1.0 / (var + NORM_EPS).sqrt();
                    cur.inv_std[r] = inv;
                    let xhat = &mut cur.xhat[r * iw..(r + 1) * iw];
                    for j in 0..iw {
                        xhat[j] = (row[j] - mean) * inv;
                        row[j] = xhat[j] * gain[j] + shift[j];
                    }
                }
            }
            cur.masked = false;
            if let (Some(rng), true) = (dropout.as_deref_mut(), layer.dropout > 0.0) {
                let keep = 1.0 / (1.0 - layer.dropout);
                // Two 24-bit uniforms per draw; an element is dropped when its draw is below p.
                let threshold = (f64::from(layer.dropout) * f64::from(1u32 << 24)) as u32;
                let mask = &mut cur.mask[..rows * iw];
                for pair in mask.chunks_mut(2) {
                    let bits = rng.next_u64();
                    let draws = [(bits >> 40) as u32, (bits >> 8) as u32 & 0x00FF_FFFF];
                    for (m, d) in pair.iter_mut().zip(draws) {
                        *m = if d < threshold { 0.0 } else { keep };
                    }
                }
                inp.iter_mut().zip(mask.iter()).for_each(|(v, m)| *v *= m);
                cur.masked = true;
            }
            let z = &mut cur.z[..rows * ow];
            let bias = &params[layer.bias..layer.bias + ow];
            for r in 0..rows {
                z[r * ow..(r + 1) * ow].copy_from_slice(bias);
            }
            let w = &params[layer.weight..layer.weight + iw * ow];
            sgemm(rows, iw, ow, inp, false, w, false, 1.0, z);
            if li + 1 < self.layers.len() {
                layer.activation.forward(z, &mut cur.h[..rows * ow]);
            }
        }
    }

    /// Mutable gradient of the loss with respect to the head's outputs, to be filled by the loss
    /// before [`Network::backward`], together with the outputs themselves.
    pub(crate) fn output_and_grad<'a>(
        &self,
        ws: &'a mut Workspace,
        rows: usize,
    ) -> (&'a [f32], &'a mut [f32]) {
        let head = &mut ws.bufs[self.layers.len() - 1];
        let n = rows * self.n_outputs;
        (&head.z[..n], &mut head.dz[..n])
    }

    /// Back-propagates the head gradient (set through [`Network::output_and_grad`]) and writes the
    /// full parameter gradient into `grads` (overwriting it).
    pub(crate) fn backward(
        &self,
        params: &[f32],
        grads: &mut [f32],
        rows: usize,
        ws: &mut Workspace,
    ) {
        let last = self.layers.len() - 1;
        for (li, layer) in self.layers.iter().enumerate().take(last) {
            ws.bufs[li].dh[..rows * layer.out_width].fill(0.0);
        }
        for (li, layer) in self.layers.iter().enumerate().rev() {
            let (done, rest) = ws.bufs.split_at_mut(li);
            let cur = &mut rest[0];
            let (iw, ow) = (layer.in_width, layer.out_width);
            let dz = &mut cur.dz[..rows * ow];
            if li != last {
                layer.activation.backward(
                    &cur.z[..rows * ow],
                    &cur.h[..rows * ow],
                    &cur.dh[..rows * ow],
                    dz,
                );
            }
            let inp = &cur.inp[..rows * iw];
            sgemm(
                iw,
                rows,
                ow,
                inp,
                true,
                dz,
                false,
                0.0,
                &mut grads[layer.weight..layer.weight + iw * ow],
            );
            let gb = &mut grads[layer.bias..layer.bias + ow];
            gb.fill(0.0);
            for r in 0..rows {
                for (g, d) in gb.iter_mut().zip(&dz[r * ow..(r + 1) * ow]) {
                    *g += d;
                }
            }
            if !layer.input_grad {
                continue;
            }
            let dinp = &mut cur.dinp[..rows * iw];
            let w = &params[layer.weight..layer.weight + iw * ow];
            sgemm(rows, ow, iw, dz, false, w, true, 0.0, dinp);
            if cur.masked {
                dinp.iter_mut()
                    .zip(&cur.mask[..rows * iw])
                    .for_each(|(d, m)| *d *= m);
            }
            if let Some(g) = layer.norm {
                let gain = &params[g..g + iw];
                let (dgain, dshift) = grads[g..g + 2 * iw].split_at_mut(iw);
                dgain.fill(0.0);
                dshift.fill(0.0);
                for r in 0..rows {
                    let dy = &mut dinp[r * iw..(r + 1) * iw];
                    let xhat = &cur.xhat[r * iw..(r + 1) * iw];
                    for (((dg, ds), &d), &xh) in dgain
                        .iter_mut()
                        .zip(dshift.iter_mut())
                        .zip(dy.iter())
                        .zip(xhat)
                    {
                        *dg += d * xh;
                        *ds += d;
                    }
                    // dy becomes the gradient with respect to xhat.
                    dy.iter_mut().zip(gain).for_each(|(d, &g)| *d *= g);
                    let mean_d = lane_sum(dy, |v| v) / iw as f32;
                    let mean_dx = lane_dot(dy, xhat) / iw as f32;
                    let inv = cur.inv_std[r];
                    for (d, &xh) in dy.iter_mut().zip(xhat) {
                        *d = inv * (*d - mean_d - xh * mean_dx);
                    }
                }
            }
            for r in 0..rows {
                let mut off = 0;
                for &(node, w) in &layer.sources {
                    if node != 0 {
                        let dst = &mut done[node - 1].dh[r * w..(r + 1) * w];
                        for (d, s) in dst.iter_mut().zip(&dinp[r * iw + off..r * iw + off + w]) {
                            *d += s;
                        }
                    }
                    off += w;
                }
            }
        }
    }
}

/// Whether a unit with layer norm switched on normalises its input. Units that read only the network
/// input skip it: the features are already standardised per column, and normalising a row of raw
/// features across columns would erase its overall level and scale.
fn normalised(enabled: bool, inputs: &[usize], in_width: usize) -> bool {
    enabled && in_width >= 2 && inputs.iter().any(|&n| n != 0)
}

/// Sum of `f(x)` over `xs` in eight independent lanes, so the compiler can vectorise it.
fn lane_sum(xs: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0.0_f32; 8];
    let chunks = xs.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().map(|&x| f(x)).sum();
    for chunk in chunks {
        for (l, &x) in lanes.iter_mut().zip(chunk) {
            *l += f(x);
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// Dot product of `a` and `b` in eight independent lanes.
fn lane_dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0_f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (xa, xb) in ca.zip(cb) {
        for ((l, &x), &y) in lanes.iter_mut().zip(xa).zip(xb) {
            *l += x * y;
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// Buffers of one layer, sized for the workspace's row capacity.
#[derive(Debug, Clone, Default)]
struct Buffers {
    inp: Vec<f32>,
    xhat: Vec<f32>,
    inv_std: Vec<f32>,
    mask: Vec<f32>,
    masked: bool,
    z: Vec<f32>,
    h: Vec<f32>,
    dh: Vec<f32>,
    dz: Vec<f32>,
    dinp: Vec<f32>,
}

/// Reusable activation and gradient storage for up to `rows_cap` rows.
#[derive(Debug, Clone)]
pub(crate) struct Workspace {
    rows_cap: usize,
    bufs: Vec<Buffers>,
}

impl Workspace {
    /// Allocates buffers for `net` and batches of up to `rows_cap` rows.
    pub(crate) fn new(net: &Network, rows_cap: usize) -> Workspace {
        let last = net.layers.len() - 1;
        let bufs = net
            .layers
            .iter()
            .enumerate()
            .map(|(li, l)| {
                let (i, o) = (l.in_width * rows_cap, l.out_width * rows_cap);
                let sized = |yes: bool, n: usize| if yes { vec![0.0; n] } else { Vec::new() };
                Buffers {
                    inp: vec![0.0; i],
                    xhat: sized(l.norm.is_some(), i),
                    inv_std: sized(l.norm.is_some(), rows_cap),
                    mask: sized(l.dropout > 0.0, i),
                    masked: false,
                    z: vec![0.0; o],
                    h: sized(li != last, o),
                    dh: sized(li != last, o),
                    dz: vec![0.0; o],
                    dinp: sized(l.input_grad, i),
                }
            })
            .collect();
        Workspace { rows_cap, bufs }
    }

    /// Most rows one pass may hold.
    pub(crate) fn rows_cap(&self) -> usize {
        self.rows_cap
    }
}

#[cfg(test)]
mod tests {
    use super::super::loss;
    use super::super::wiring::{Shape, draw};
    use super::*;

    /// Loss of the network on a fixed batch, and optionally its gradient.
    fn loss_and_grad(
        net: &Network,
        params: &[f32],
        x: &[f32],
        y: &Targets,
        rows: usize,
        grads: Option<&mut [f32]>,
    ) -> f64 {
        let mut ws = Workspace::new(net, rows);
        net.forward(params, x, rows, &mut ws, None);
        let (out, dz) = net.output_and_grad(&mut ws, rows);
        let total = match y {
            Targets::Classes(c) => loss::softmax_cross_entropy(out, net.n_outputs, c, dz),
            Targets::Values(v) => loss::squared_error(out, v, dz),
        };
        if let Some(g) = grads {
            net.backward(params, g, rows, &mut ws);
        }
        total / rows as f64
    }

    enum Targets {
        Classes(Vec<usize>),
        Values(Vec<f32>),
    }

    fn check(activation: Activation, normalization: bool, classification: bool) {
        let wiring = draw(
            &Shape {
                units_per_level: &[2, 3],
                neurons_per_unit: &[3, 4],
                p_lateral_connection: 1.0,
                predecessor_affinity: 0.5,
            },
            &mut Rng::seed_from_u64(11),
        );
        assert!(
            wiring.units.iter().any(|u| u.inputs.len() > 1),
            "the test DAG must concatenate"
        );
        let outputs = if classification { 3 } else { 1 };
        let opts = UnitOptions {
            activation,
            normalization,
            dropout: 0.0,
        };
        let net = Network::build(&wiring, 4, outputs, opts);
        let mut rng = Rng::seed_from_u64(5);
        let mut params = net.init(&mut rng);
        // Non-trivial norm gains and biases so their gradients are exercised too.
        params
            .iter_mut()
            .for_each(|p| *p += 0.1 * rng.normal() as f32);
        let rows = 5;
        let x: Vec<f32> = (0..rows * 4).map(|_| rng.normal() as f32).collect();
        let y = if classification {
            Targets::Classes((0..rows).map(|i| i % 3).collect())
        } else {
            Targets::Values((0..rows).map(|_| rng.normal() as f32).collect())
        };
        let mut grads = vec![0.0; net.n_params];
        loss_and_grad(&net, &params, &x, &y, rows, Some(&mut grads));
        // Two step sizes: the large one is immune to f32 rounding, the small one rarely straddles a
        // kink of a relu-like activation (layer norm on a nearly constant row magnifies kinks). A
        // wrong gradient fails at both.
        let mut worst = 0.0_f64;
        for i in 0..net.n_params {
            let error_at = |eps: f32| {
                let mut p = params.clone();
                p[i] = params[i] + eps;
                let up = loss_and_grad(&net, &p, &x, &y, rows, None);
                p[i] = params[i] - eps;
                let down = loss_and_grad(&net, &p, &x, &y, rows, None);
                let numeric = (up - down) / (2.0 * f64::from(eps));
                let analytic = f64::from(grads[i]);
                (numeric - analytic).abs() / (1e-2 + numeric.abs() + analytic.abs())
            };
            worst = worst.max(error_at(1e-2).min(error_at(1e-3)));
        }
        assert!(
            worst < 0.05,
            "{} norm={normalization} class={classification}: worst relative error {worst}",
            activation.name()
        );
    }

    #[test]
    fn gradients_match_finite_differences_for_every_activation() {
        for a in Activation::ALL {
            check(a, false, true);
            check(a, true, true);
        }
        check(Activation::Tanh, true, false);
        check(Activation::Gelu, false, false);
    }

    #[test]
    fn parameter_count_matches_the_layout() {
        let wiring = draw(
            &Shape {
                units_per_level: &[3, 2],
                neurons_per_unit: &[5, 7],
                p_lateral_connection: 0.5,
                predecessor_affinity: 0.5,
            },
            &mut Rng::seed_from_u64(2),
        );
        for norm in [false, true] {
            let opts = UnitOptions {
                activation: Activation::Relu,
                normalization: norm,
                dropout: 0.0,
            };
            let net = Network::build(&wiring, 6, 3, opts);
            assert_eq!(
                net.n_params as u128,
                Network::count_params(&wiring, 6, 3, norm)
            );
        }
    }
}
