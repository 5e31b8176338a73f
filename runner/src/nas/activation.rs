//! Element-wise activation functions and their derivatives.

/// Non-linearity applied after each unit's dense layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `max(0, z)`.
    Relu,
    /// `z` for positive inputs, `0.01 z` otherwise.
    LeakyRelu,
    /// `z` for positive inputs, `exp(z) - 1` otherwise.
    Elu,
    /// Gaussian error linear unit (tanh approximation).
    Gelu,
    /// `z * sigmoid(z)` (also called swish).
    Silu,
    /// Hyperbolic tangent.
    Tanh,
    /// Logistic sigmoid.
    Sigmoid,
    /// Identity.
    Linear,
}

const LEAKY_SLOPE: f32 = 0.01;
const GELU_C: f32 = 0.797_884_6; // sqrt(2 / pi)
const GELU_K: f32 = 0.044_715;

impl Activation {
    /// Every activation, in documentation order.
    pub const ALL: [Activation; 8] = [
        Activation::Relu,
        Activation::LeakyRelu,
        Activation::Elu,
        Activation::Gelu,
        Activation::Silu,
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::Linear,
    ];

    /// Canonical lower-case name, as accepted by [`Activation::parse`].
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::LeakyRelu => "leaky_relu",
            Activation::Elu => "elu",
            Activation::Gelu => "gelu",
            Activation::Silu => "silu",
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
            Activation::Linear => "linear",
        }
    }

    /// Parses a name case-insensitively; accepts `swish` for silu and `identity`/`none` for linear.
    pub fn parse(name: &str) -> Option<Activation> {
        let lower = name.trim().to_ascii_lowercase();
        let found = match lower.as_str() {
            "swish" => Activation::Silu,
            "identity" | "none" => Activation::Linear,
            "leakyrelu" | "leaky-relu" => Activation::LeakyRelu,
            other => *Activation::ALL.iter().find(|a| a.name() == other)?,
        };
        Some(found)
    }

    /// Whether He initialisation suits this activation (rectifier-like); Glorot otherwise.
    pub(crate) fn prefers_he_init(self) -> bool {
        matches!(
            self,
            Activation::Relu
                | Activation::LeakyRelu
                | Activation::Elu
                | Activation::Gelu
                | Activation::Silu
        )
    }

    /// Writes `h = f(z)`.
    pub(crate) fn forward(self, z: &[f32], h: &mut [f32]) {
        let pairs = h.iter_mut().zip(z);
        match self {
            Activation::Relu => pairs.for_each(|(h, &z)| *h = z.max(0.0)),
            Activation::LeakyRelu => {
                pairs.for_each(|(h, &z)| *h = if z > 0.0 { z } else { LEAKY_SLOPE * z })
            }
            Activation::Elu => pairs.for_each(|(h, &z)| *h = if z > 0.0 { z } else { z.exp_m1() }),
            Activation::Gelu => pairs.for_each(|(h, &z)| {
                let t = (GELU_C * (z + GELU_K * z * z * z)).tanh();
                *h = 0.5 * z * (1.0 + t);
            }),
            Activation::Silu => pairs.for_each(|(h, &z)| *h = z / (1.0 + (-z).exp())),
            Activation::Tanh => pairs.for_each(|(h, &z)| *h = z.tanh()),
            Activation::Sigmoid => pairs.for_each(|(h, &z)| *h = 1.0 / (1.0 + (-z).exp())),
            Activation::Linear => h.copy_from_slice(z),
        }
    }

    /// Writes `dz = dh * f'(z)`, given the forward input `z` and output `h`.
    pub(crate) fn backward(self, z: &[f32], h: &[f32], dh: &[f32], dz: &mut [f32]) {
        // Iterator zips (no indexing) let the compiler turn the selects into vector blends.
        let it = dz.iter_mut().zip(z.iter().zip(h).zip(dh));
        match self {
            Activation::Relu => {
                it.for_each(|(d, ((&z, _), &g))| *d = if z > 0.0 { g } else { 0.0 })
            }
            Activation::LeakyRelu => {
                it.for_each(|(d, ((&z, _), &g))| *d = if z > 0.0 { g } else { LEAKY_SLOPE * g })
            }
            Activation::Elu => {
                it.for_each(|(d, ((&z, &h), &g))| *d = if z > 0.0 { g } else { g * (h + 1.0) })
            }
            Activation::Gelu => it.for_each(|(d, ((&x, _), &g))| {
                let t = (GELU_C * (x + GELU_K * x * x * x)).tanh();
                let du = GELU_C * (1.0 + 3.0 * GELU_K * x * x);
                *d = g * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du);
            }),
            Activation::Silu => it.for_each(|(d, ((&z, _), &g))| {
                let s = 1.0 / (1.0 + (-z).exp());
                *d = g * s * (1.0 + z * (1.0 - s));
            }),
            Activation::Tanh => it.for_each(|(d, ((_, &h), &g))| *d = g * (1.0 - h * h)),
            Activation::Sigmoid => it.for_each(|(d, ((_, &h), &g))| *d = g * h * (1.0 - h)),
            Activation::Linear => it.for_each(|(d, (_, &g))| *d = g),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_aliases_parse() {
        for a in Activation::ALL {
            assert_eq!(Activation::parse(a.name()), Some(a));
            assert_eq!(Activation::parse(&a.name().to_uppercase()), Some(a));
        }
        assert_eq!(Activation::parse("swish"), Some(Activation::Silu));
        assert_eq!(Activation::parse("identity"), Some(Activation::Linear));
        assert_eq!(Activation::parse("softmax"), None);
    }

    #[test]
    fn derivatives_match_finite_differences() {
        let zs: Vec<f32> = (-30..=30).map(|i| i as f32 * 0.137 + 0.011).collect();
        for a in Activation::ALL {
            let mut h = vec![0.0; zs.len()];
            a.forward(&zs, &mut h);
            let mut dz = vec![0.0; zs.len()];
            a.backward(&zs, &h, &vec![1.0; zs.len()], &mut dz);
            for (i, &z) in zs.iter().enumerate() {
                let eps = 1e-3_f32;
                let (mut hp, mut hm) = ([0.0_f32], [0.0_f32]);
                a.forward(&[z + eps], &mut hp);
                a.forward(&[z - eps], &mut hm);
                let numeric = (hp[0] - hm[0]) / (2.0 * eps);
                assert!(
                    (numeric - dz[i]).abs() < 2e-2,
                    "{} at {z}: numeric {numeric} analytic {}",
                    a.name(),
                    dz[i]
                );
            }
        }
    }
}
