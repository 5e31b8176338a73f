//! The colour scale of the parallel-coordinates lines: a perceptually uniform purple–green–yellow ramp.

/// Ten evenly spaced stops of the ramp, dark (low values) to bright (high values).
const STOPS: [(u8, u8, u8); 10] = [
    (0x44, 0x01, 0x54),
    (0x48, 0x28, 0x78),
    (0x3e, 0x49, 0x89),
    (0x31, 0x68, 0x8e),
    (0x26, 0x82, 0x8e),
    (0x1f, 0x9e, 0x89),
    (0x35, 0xb7, 0x79),
    (0x6e, 0xce, 0x58),
    (0xb5, 0xde, 0x2b),
    (0xfd, 0xe7, 0x25),
];

/// The ramp's colour at `t` in [0, 1] (clamped; NaN reads as 0) as `#rrggbb`.
pub(crate) fn ramp(t: f64) -> String {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let pos = t * (STOPS.len() - 1) as f64;
    let i = (pos.floor() as usize).min(STOPS.len() - 2);
    let f = pos - i as f64;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let mix = |x: u8, y: u8| (f64::from(x) + (f64::from(y) - f64::from(x)) * f).round() as u8;
    format!(
        "#{:02x}{:02x}{:02x}",
        mix(a.0, b.0),
        mix(a.1, b.1),
        mix(a.2, b.2)
    )
}

/// The ramp as SVG `<stop>` elements for a `linearGradient` legend bar, low to high.
pub(crate) fn gradient_stops() -> String {
    let last = (STOPS.len() - 1) as f64;
    STOPS
        .iter()
        .enumerate()
        .map(|(i, (r, g, b))| {
            format!(
                r##"<stop offset="{:.3}" stop-color="#{r:02x}{g:02x}{b:02x}"/>"##,
                i as f64 / last
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ends_are_the_first_and_last_stops() {
        assert_eq!(ramp(0.0), "#440154");
        assert_eq!(ramp(1.0), "#fde725");
    }

    #[test]
    fn out_of_range_and_nan_are_clamped() {
        assert_eq!(ramp(-3.0), ramp(0.0));
        assert_eq!(ramp(7.0), ramp(1.0));
        assert_eq!(ramp(f64::NAN), ramp(0.0));
    }

    #[test]
    fn midpoints_blend_neighbouring_stops() {
        // Halfway between #440154 and #482878.
        assert_eq!(ramp(0.5 / 9.0), "#461566");
    }

    #[test]
    fn one_stop_per_ramp_entry() {
        assert_eq!(gradient_stops().matches("<stop ").count(), STOPS.len());
    }
}
