//! Mapping data values onto pixels, choosing axis ticks and formatting numbers for labels.

/// A numeric axis: a data domain (linear or base-10 logarithmic) mapped onto a pixel range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Scale {
    lo: f64,
    hi: f64,
    log: bool,
    p0: f64,
    p1: f64,
}

impl Scale {
    /// A linear scale over `[lo, hi]`; a degenerate or inverted domain maps everything to the middle.
    pub(crate) fn linear(lo: f64, hi: f64, p0: f64, p1: f64) -> Self {
        Self {
            lo,
            hi,
            log: false,
            p0,
            p1,
        }
    }

    /// A log scale over `[lo, hi]`; the caller guarantees `0 < lo`.
    pub(crate) fn log(lo: f64, hi: f64, p0: f64, p1: f64) -> Self {
        Self {
            lo,
            hi,
            log: true,
            p0,
            p1,
        }
    }

    /// The data domain, low to high.
    pub(crate) fn domain(&self) -> (f64, f64) {
        (self.lo, self.hi)
    }

    /// Whether this scale is logarithmic.
    pub(crate) fn is_log(&self) -> bool {
        self.log
    }

    /// Where `v` falls, as a fraction of the domain in [0, 1] (clamped; 0.5 for a degenerate domain).
    pub(crate) fn fraction(&self, v: f64) -> f64 {
        let (a, b, x) = if self.log {
            (
                self.lo.log10(),
                self.hi.log10(),
                v.max(f64::MIN_POSITIVE).log10(),
            )
        } else {
            (self.lo, self.hi, v)
        };
        if b > a && x.is_finite() {
            ((x - a) / (b - a)).clamp(0.0, 1.0)
        } else {
            0.5
        }
    }

    /// The pixel position of `v`.
    pub(crate) fn map(&self, v: f64) -> f64 {
        self.p0 + self.fraction(v) * (self.p1 - self.p0)
    }

    /// Tick values inside the domain, with their labels.
    pub(crate) fn ticks(&self, target: usize) -> Vec<(f64, String)> {
        if self.log {
            log_ticks(self.lo, self.hi)
        } else {
            linear_ticks(self.lo, self.hi, target)
        }
    }
}

/// The smallest and largest finite value, if any.
pub(crate) fn extent(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

/// Widens a domain to round tick values, and a single value to a small interval around it, so points never
/// sit on the plot's edge and a one-value domain still has ticks.
pub(crate) fn nice_domain(lo: f64, hi: f64, target: usize) -> (f64, f64) {
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        (lo - pad, hi + pad)
    };
    let step = nice_step(hi - lo, target);
    if !positive_finite(step) {
        return (lo, hi);
    }
    ((lo / step).floor() * step, (hi / step).ceil() * step)
}

/// A round step (1, 2 or 5 times a power of ten) giving about `target` intervals over `range`.
fn nice_step(range: f64, target: usize) -> f64 {
    let raw = range / target.max(1) as f64;
    if !positive_finite(raw) {
        return 0.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let f = raw / magnitude;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

/// Ticks at whole numbers only (for trial numbers and integer parameters): a round integer step, at least 1.
pub(crate) fn integer_ticks(lo: f64, hi: f64, target: usize) -> Vec<(f64, String)> {
    let (lo, hi) = (lo.ceil(), hi.floor());
    if !(lo.is_finite() && hi.is_finite()) || hi < lo {
        return Vec::new();
    }
    let step = nice_step(hi - lo, target).max(1.0).round();
    let first = (lo / step).ceil() * step;
    (0..MAX_TICKS)
        .map(|i| first + i as f64 * step)
        .take_while(|t| *t <= hi)
        .map(|t| (t, format!("{t:.0}")))
        .collect()
}

/// Whether `x` is a usable step: finite and above zero.
fn positive_finite(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

/// At most this many ticks on any axis, whatever the domain.
const MAX_TICKS: usize = 40;

fn linear_ticks(lo: f64, hi: f64, target: usize) -> Vec<(f64, String)> {
    let step = nice_step(hi - lo, target);
    if !positive_finite(step) {
        return if lo.is_finite() {
            vec![(lo, format_number(lo))]
        } else {
            Vec::new()
        };
    }
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    let first = (lo / step).ceil();
    (0..MAX_TICKS)
        .map(|i| (first + i as f64) * step)
        .take_while(|t| *t <= hi + step * 1e-9)
        .map(|t| {
            let label = if step.abs() >= 1e-3 && t.abs() < 1e6 {
                let text = format!("{t:.decimals$}");
                if text
                    .trim_start_matches('-')
                    .chars()
                    .all(|c| c == '0' || c == '.')
                {
                    "0".to_string()
                } else {
                    text
                }
            } else {
                format_number(t)
            };
            (t, label)
        })
        .collect()
}

fn log_ticks(lo: f64, hi: f64) -> Vec<(f64, String)> {
    let (a, b) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let decades: Vec<f64> = (a..=b)
        .map(|e| 10f64.powi(e))
        .filter(|t| *t >= lo * (1.0 - 1e-9) && *t <= hi * (1.0 + 1e-9))
        .collect();
    let mut ticks: Vec<f64> = if decades.len() >= 2 {
        decades
    } else {
        (a..=b)
            .flat_map(|e| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(e)))
            .filter(|t| *t >= lo * (1.0 - 1e-9) && *t <= hi * (1.0 + 1e-9))
            .collect()
    };
    if ticks.len() > MAX_TICKS {
        let every = ticks.len().div_ceil(MAX_TICKS);
        ticks = ticks.into_iter().step_by(every).collect();
    }
    ticks.into_iter().map(|t| (t, format_number(t))).collect()
}

/// A number as a short label: up to four significant digits, scientific notation for very large or small
/// magnitudes, and words for non-finite values.
pub(crate) fn format_number(v: f64) -> String {
    format_significant(v, 4)
}

/// A number with up to `digits` significant digits (trailing zeros dropped).
pub(crate) fn format_significant(v: f64, digits: usize) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "∞" } else { "−∞" }.to_string();
    }
    if v == 0.0 {
        return "0".to_string();
    }
    let digits = digits.max(1);
    let magnitude = v.abs().log10().floor() as i32;
    if !(-3..6).contains(&magnitude) {
        let text = format!("{v:.prec$e}", prec = digits - 1);
        return match text.split_once('e') {
            Some((mantissa, exponent)) => format!("{}e{exponent}", trim_zeros(mantissa)),
            None => text,
        };
    }
    let decimals = (digits as i32 - 1 - magnitude).max(0) as usize;
    trim_zeros(&format!("{v:.decimals$}")).to_string()
}

fn trim_zeros(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_scales_map_the_domain_onto_the_pixel_range() {
        let s = Scale::linear(0.0, 10.0, 100.0, 200.0);
        assert_eq!(s.map(0.0), 100.0);
        assert_eq!(s.map(5.0), 150.0);
        assert_eq!(s.map(10.0), 200.0);
        assert_eq!(s.map(20.0), 200.0, "clamped");
    }

    #[test]
    fn inverted_pixel_ranges_work_for_vertical_axes() {
        let s = Scale::linear(0.0, 1.0, 300.0, 100.0);
        assert_eq!(s.map(1.0), 100.0);
    }

    #[test]
    fn degenerate_domains_map_to_the_middle() {
        let s = Scale::linear(3.0, 3.0, 0.0, 10.0);
        assert_eq!(s.map(3.0), 5.0);
        assert_eq!(s.map(f64::NAN), 5.0);
    }

    #[test]
    fn log_scales_space_decades_evenly() {
        let s = Scale::log(1e-4, 1.0, 0.0, 400.0);
        assert!((s.map(1e-3) - 100.0).abs() < 1e-9);
        assert!((s.map(1e-1) - 300.0).abs() < 1e-9);
        let labels: Vec<String> = s.ticks(5).into_iter().map(|(_, l)| l).collect();
        assert_eq!(labels, ["1e-4", "0.001", "0.01", "0.1", "1"]);
    }

    #[test]
    fn linear_ticks_are_round_and_inside_the_domain() {
        let ticks = Scale::linear(0.13, 0.97, 0.0, 1.0).ticks(5);
        let values: Vec<&str> = ticks.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(values, ["0.2", "0.4", "0.6", "0.8"]);
    }

    #[test]
    fn integer_ticks_are_whole_numbers() {
        let labels = |lo, hi| -> Vec<String> {
            integer_ticks(lo, hi, 10)
                .into_iter()
                .map(|(_, l)| l)
                .collect()
        };
        assert_eq!(labels(1.0, 3.0), ["1", "2", "3"]);
        assert_eq!(labels(1.0, 1.0), ["1"]);
        assert_eq!(labels(1.0, 30.0), ["5", "10", "15", "20", "25", "30"]);
        assert!(labels(1.5, 1.7).is_empty());
    }

    #[test]
    fn nice_domains_round_outwards_and_widen_single_values() {
        assert_eq!(nice_domain(0.13, 0.97, 5), (0.0, 1.0));
        let (lo, hi) = nice_domain(0.9, 0.9, 5);
        assert!(lo < 0.9 && hi > 0.9);
        let (lo, hi) = nice_domain(0.0, 0.0, 5);
        assert!(lo < 0.0 && hi > 0.0);
    }

    #[test]
    fn extent_skips_non_finite_values() {
        assert_eq!(
            extent([f64::NAN, 2.0, f64::INFINITY, -1.0]),
            Some((-1.0, 2.0))
        );
        assert_eq!(extent([f64::NAN]), None);
    }

    #[test]
    fn numbers_read_short() {
        assert_eq!(format_number(0.912345), "0.9123");
        assert_eq!(format_number(12.0), "12");
        assert_eq!(format_number(0.00012), "1.2e-4");
        assert_eq!(format_number(2.5e7), "2.5e7");
        assert_eq!(format_number(-3.5), "-3.5");
        assert_eq!(format_number(f64::INFINITY), "∞");
        assert_eq!(format_significant(1234.5678, 6), "1234.57");
    }
}
