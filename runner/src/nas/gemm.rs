//! Safe row-major matrix product over `matrixmultiply::sgemm` (single-threaded build).

/// `c = op(a) · op(b) + beta · c` for row-major matrices, where `op(a)` is `m × k` and `op(b)` is
/// `k × n`. With `a_t`, `a` is stored as `k × m` (its transpose is used); likewise `b_t` for `b`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    a_t: bool,
    b: &[f32],
    b_t: bool,
    beta: f32,
    c: &mut [f32],
) {
    assert!(
        a.len() >= m * k && b.len() >= k * n && c.len() >= m * n,
        "sgemm operands too short"
    );
    if m == 0 || n == 0 {
        return;
    }
    let (rsa, csa) = if a_t { (1, m) } else { (k, 1) };
    let (rsb, csb) = if b_t { (1, k) } else { (n, 1) };
    // SAFETY: the assertion above guarantees every index the strides address lies inside the
    // slices (`a` spans m·k, `b` k·n, `c` m·n elements), and `c` is exclusively borrowed.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            rsa as isize,
            csa as isize,
            b.as_ptr(),
            rsb as isize,
            csb as isize,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(
        m: usize,
        k: usize,
        n: usize,
        a: impl Fn(usize, usize) -> f32,
        b: impl Fn(usize, usize) -> f32,
    ) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a(i, p) * b(p, j)).sum();
            }
        }
        c
    }

    #[test]
    fn all_transpose_combinations_match_the_naive_product() {
        let (m, k, n) = (3, 5, 4);
        let a: Vec<f32> = (0..m * k).map(|i| i as f32 * 0.5 - 3.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 7) as f32 - 2.0).collect();
        for (a_t, b_t) in [(false, false), (true, false), (false, true), (true, true)] {
            let ga = |i: usize, p: usize| if a_t { a[p * m + i] } else { a[i * k + p] };
            let gb = |p: usize, j: usize| if b_t { b[j * k + p] } else { b[p * n + j] };
            let mut c = vec![1.0; m * n];
            sgemm(m, k, n, &a, a_t, &b, b_t, 1.0, &mut c);
            let expected: Vec<f32> = naive(m, k, n, ga, gb).iter().map(|x| x + 1.0).collect();
            assert_eq!(c, expected, "a_t={a_t} b_t={b_t}");
        }
    }
}
