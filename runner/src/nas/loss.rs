//! Loss functions: each returns the summed loss over the batch and writes the gradient of the
//! batch-mean loss with respect to the network outputs.

/// Softmax cross-entropy over `k` logits per row against class indices.
pub(crate) fn softmax_cross_entropy(
    logits: &[f32],
    k: usize,
    classes: &[usize],
    grad: &mut [f32],
) -> f64 {
    let rows = classes.len();
    let scale = 1.0 / rows as f32;
    let mut total = 0.0_f64;
    for (r, &class) in classes.iter().enumerate() {
        let row = &logits[r * k..(r + 1) * k];
        let g = &mut grad[r * k..(r + 1) * k];
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0_f32;
        for (gi, &l) in g.iter_mut().zip(row) {
            *gi = (l - max).exp();
            sum += *gi;
        }
        total += f64::from(sum.ln() + max - row[class]);
        let inv = scale / sum;
        g.iter_mut().for_each(|gi| *gi *= inv);
        g[class] -= scale;
    }
    total
}

/// Squared error of one output per row against targets.
pub(crate) fn squared_error(outputs: &[f32], targets: &[f32], grad: &mut [f32]) -> f64 {
    let scale = 2.0 / targets.len() as f32;
    let mut total = 0.0_f64;
    for ((g, &o), &t) in grad.iter_mut().zip(outputs).zip(targets) {
        let d = o - t;
        total += f64::from(d * d);
        *g = scale * d;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_entropy_of_uniform_logits_is_log_k_and_gradient_sums_to_zero() {
        let mut g = vec![0.0; 6];
        let total = softmax_cross_entropy(&[0.0; 6], 3, &[0, 2], &mut g);
        assert!((total / 2.0 - 3f64.ln()).abs() < 1e-6);
        assert!(g.iter().sum::<f32>().abs() < 1e-6);
        assert!(g[0] < 0.0 && g[5] < 0.0 && g[1] > 0.0);
    }

    #[test]
    fn cross_entropy_is_stable_for_huge_logits() {
        let mut g = vec![0.0; 2];
        let total = softmax_cross_entropy(&[1e30, -1e30], 2, &[1], &mut g);
        assert!(total.is_finite() && total > 1e29);
        assert!(g.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn squared_error_sums_and_differentiates() {
        let mut g = vec![0.0; 2];
        assert_eq!(squared_error(&[1.0, 3.0], &[0.0, 1.0], &mut g), 5.0);
        assert_eq!(g, vec![1.0, 2.0]);
    }
}
