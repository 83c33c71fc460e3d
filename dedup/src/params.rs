//! The LSH S-curve: how likely two documents of a given Jaccard similarity share a band.

/// Probability that two sets of Jaccard similarity `s` share at least one of `bands` bands of
/// `rows` minima: `1 − (1 − s^rows)^bands`.
pub fn collision_probability(s: f64, bands: usize, rows: usize) -> f64 {
    1.0 - (1.0 - s.powi(rows as i32)).powi(bands as i32)
}

/// The `(bands, rows)` with `bands × rows ≤ max_hashes` whose S-curve best separates pairs
/// above `threshold` from pairs below it: it minimises the area of false positives (the curve
/// below the threshold) plus false negatives (one minus the curve above it), equally weighted.
pub fn choose_bands_rows(threshold: f64, max_hashes: usize) -> (usize, usize) {
    let mut best = (1, 1);
    let mut best_error = f64::INFINITY;
    for bands in 1..=max_hashes {
        for rows in 1..=max_hashes / bands {
            let fp = integrate(|s| collision_probability(s, bands, rows), 0.0, threshold);
            let fneg = integrate(
                |s| 1.0 - collision_probability(s, bands, rows),
                threshold,
                1.0,
            );
            let error = fp + fneg;
            if error < best_error - 1e-12 {
                best_error = error;
                best = (bands, rows);
            }
        }
    }
    best
}

fn integrate(f: impl Fn(f64) -> f64, a: f64, b: f64) -> f64 {
    const STEPS: usize = 200;
    let h = (b - a) / STEPS as f64;
    (0..STEPS).map(|i| f(a + (i as f64 + 0.5) * h)).sum::<f64>() * h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fineweb_setting_is_steep_around_three_quarters() {
        assert!(collision_probability(0.9, 14, 8) > 0.99);
        assert!(collision_probability(0.5, 14, 8) < 0.06);
        assert!((collision_probability(1.0, 14, 8) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn chosen_settings_put_the_threshold_on_the_slope() {
        for t in [0.5, 0.7, 0.8, 0.9] {
            let (b, r) = choose_bands_rows(t, 128);
            assert!(b * r <= 128);
            let p = collision_probability(t, b, r);
            assert!((0.2..0.8).contains(&p), "threshold {t}: {b}×{r} gives {p}");
            assert!(collision_probability(t + 0.1, b, r) > p);
        }
    }
}
