//! The two tests a before/after verdict rests on, computed from what
//! Prometheus keeps — bucket counts and request counts, not single requests
//! — and equal to SciPy's `mannwhitneyu` and `fisher_exact`, against which
//! they are tested (`tests/scipy.rs`). Pure functions: no I/O, no clock.

use serde::Serialize;

/// The Mann-Whitney U test of *after* against *before*, two-sided, by the
/// normal approximation with the tie and continuity corrections (SciPy's
/// `mannwhitneyu(after, before, use_continuity=True,
/// alternative="two-sided", method="asymptotic")`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MannWhitney {
    /// The after sample's statistic (SciPy's `statistic`): pairs in which
    /// the after request is slower, plus half the tied pairs.
    pub u: f64,
    /// The standard score of the larger U, continuity corrected, signed by
    /// the direction: positive when after is slower. 0 when every request
    /// is tied (all in one bucket).
    pub z: f64,
    /// The two-sided p value.
    pub p: f64,
    /// The probability that a random after request is slower than a random
    /// before request, ties counted half: `u / (n_after × n_before)`. 0.5
    /// is no difference.
    pub effect: f64,
    /// Requests after.
    pub n_after: f64,
    /// Requests before.
    pub n_before: f64,
}

/// The test on binned latencies: `after[i]` and `before[i]` are the
/// requests in bucket `i` (not cumulative), buckets in increasing order of
/// bound, the same buckets on both sides. Every request of a bucket is tied
/// at that bucket. `None` when a side has no requests or the bucket lists
/// differ in length.
pub fn mann_whitney(after: &[f64], before: &[f64]) -> Option<MannWhitney> {
    let n_after: f64 = after.iter().sum();
    let n_before: f64 = before.iter().sum();
    if after.len() != before.len() || !(n_after > 0.0 && n_before > 0.0) {
        return None;
    }
    // u counts, for each after request, the before requests below its
    // bucket plus half of those in it.
    let (mut u, mut below, mut tie_term) = (0.0, 0.0, 0.0);
    for (&a, &b) in after.iter().zip(before) {
        u += a * (below + 0.5 * b);
        below += b;
        let tied = a + b;
        tie_term += tied * tied * tied - tied;
    }
    let pairs = n_after * n_before;
    let n = n_after + n_before;
    let mean = pairs / 2.0;
    let variance = pairs / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
    let larger = u.max(pairs - u);
    let (z, p) = if variance > 0.0 {
        let z = (larger - mean - 0.5) / variance.sqrt();
        (z.max(0.0), (2.0 * normal_sf(z)).clamp(0.0, 1.0))
    } else {
        (0.0, 1.0)
    };
    Some(MannWhitney {
        u,
        z: if u < mean { -z } else { z },
        p,
        effect: u / pairs,
        n_after,
        n_before,
    })
}

/// P(Z > z) for a standard normal Z, accurate in the far tail too.
fn normal_sf(z: f64) -> f64 {
    0.5 * libm::erfc(z / std::f64::consts::SQRT_2)
}

/// The z with P(Z > z) = `p`, for `p` in (0, 1): by bisection on
/// `normal_sf` (the normal survival function), to the precision of an f64.
pub fn normal_upper_quantile(p: f64) -> f64 {
    let (mut lo, mut hi) = (-40.0_f64, 40.0_f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if normal_sf(mid) > p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Fisher's exact test on the 2×2 table `[[err_after, ok_after],
/// [err_before, ok_before]]`, one-sided: the p value that the after share of
/// errors is *greater* than the before share (SciPy's
/// `fisher_exact(table, alternative="greater")`). Exact for any counts, so
/// sparse errors (0 before, 3 after) are judged as reliably as dense ones.
/// A table with an empty row or column gives 1, as SciPy does.
pub fn fisher_greater(err_after: u64, ok_after: u64, err_before: u64, ok_before: u64) -> f64 {
    let table = Table::new(err_after, ok_after, err_before, ok_before);
    match table {
        Some(t) => t.at_least(err_after as f64),
        None => 1.0,
    }
}

/// The other side: the p value that the after share of errors is *smaller*
/// than the before share (`alternative="less"`).
pub fn fisher_less(err_after: u64, ok_after: u64, err_before: u64, ok_before: u64) -> f64 {
    // err_after ≤ x is err_before ≥ errors − x: the same table read from
    // the other row.
    fisher_greater(err_before, ok_before, err_after, ok_after)
}

/// The hypergeometric law of the table's top-left cell given its margins:
/// `total` requests, `row` of them after, `errors` of them errors.
struct Table {
    total: f64,
    row: f64,
    errors: f64,
    lowest: f64,
    highest: f64,
}

/// Terms smaller than e^-50 of the largest one change no sum at the
/// precision of an f64.
const NEGLIGIBLE: f64 = -50.0;

impl Table {
    fn new(err_after: u64, ok_after: u64, err_before: u64, ok_before: u64) -> Option<Table> {
        let [ea, oa, eb, ob] = [err_after, ok_after, err_before, ok_before].map(|c| c as f64);
        let (row, errors, total) = (ea + oa, ea + eb, ea + oa + eb + ob);
        if row == 0.0 || row == total || errors == 0.0 || errors == total {
            return None;
        }
        Some(Table {
            total,
            row,
            errors,
            lowest: (errors - (total - row)).max(0.0),
            highest: row.min(errors),
        })
    }

    /// ln(pmf(k + 1) / pmf(k)).
    fn step_up(&self, k: f64) -> f64 {
        let rest = self.total - self.row - self.errors + k + 1.0;
        ((self.row - k) * (self.errors - k)).ln() - ((k + 1.0) * rest).ln()
    }

    /// Σ e^(w_k) over `k` from `from` (weight `w_from` relative to the
    /// mode) upwards (`up`) or downwards, until the terms are negligible
    /// next to `w_stop`.
    fn walk(&self, from: f64, w_from: f64, up: bool, w_stop: f64) -> f64 {
        let (mut k, mut w, mut sum) = (from, w_from, 0.0);
        loop {
            sum += w.exp();
            if up {
                if k >= self.highest {
                    break;
                }
                w += self.step_up(k);
                k += 1.0;
            } else {
                if k <= self.lowest {
                    break;
                }
                w -= self.step_up(k - 1.0);
                k -= 1.0;
            }
            if w < w_stop + NEGLIGIBLE {
                break;
            }
        }
        sum
    }

    /// P(X ≥ x).
    fn at_least(&self, x: f64) -> f64 {
        if x <= self.lowest {
            return 1.0;
        }
        if x > self.highest {
            return 0.0;
        }
        let mode = ((self.errors + 1.0) * (self.row + 1.0) / (self.total + 2.0))
            .floor()
            .clamp(self.lowest, self.highest);
        // Weights are relative to the mode's, so the total is at least 1.
        let below_mode = if mode > self.lowest {
            self.walk(mode - 1.0, -self.step_up(mode - 1.0), false, 0.0)
        } else {
            0.0
        };
        let from_mode = self.walk(mode, 0.0, true, 0.0);
        let total = below_mode + from_mode;
        let tail = if x <= mode {
            // The tail holds the mode: the terms from x to the mode, and all
            // above.
            let skipped = if x > self.lowest {
                self.walk(x - 1.0, self.weight(mode, x - 1.0), false, 0.0)
            } else {
                0.0
            };
            (below_mode - skipped).max(0.0) + from_mode
        } else {
            // The tail lies above the mode, maybe far beyond what the total
            // summed: sum it relative to its own first term.
            let w_x = self.weight(mode, x);
            return ((w_x + self.walk(x, 0.0, true, 0.0).ln()) - total.ln())
                .exp()
                .min(1.0);
        };
        (tail / total).min(1.0)
    }

    /// ln(pmf(k) / pmf(mode)).
    fn weight(&self, mode: f64, k: f64) -> f64 {
        let mut w = 0.0;
        let mut i = mode;
        while i < k {
            w += self.step_up(i);
            i += 1.0;
        }
        while i > k {
            w -= self.step_up(i - 1.0);
            i -= 1.0;
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1e-300)
    }

    #[test]
    fn identical_samples_are_no_difference() {
        let t = mann_whitney(&[5.0, 10.0, 5.0], &[5.0, 10.0, 5.0]).unwrap();
        assert_eq!(t.u, 200.0);
        assert_eq!(t.effect, 0.5);
        assert_eq!(t.p, 1.0);
    }

    #[test]
    fn everything_in_one_bucket_is_p_one() {
        let t = mann_whitney(&[0.0, 7.0], &[0.0, 3.0]).unwrap();
        assert_eq!((t.z, t.p, t.effect), (0.0, 1.0, 0.5));
    }

    #[test]
    fn a_slower_after_has_positive_z_and_an_effect_above_a_half() {
        let t = mann_whitney(&[0.0, 10.0], &[10.0, 0.0]).unwrap();
        assert_eq!(t.u, 100.0);
        assert_eq!(t.effect, 1.0);
        assert!(t.z > 0.0 && t.p < 0.001, "{t:?}");
        let faster = mann_whitney(&[10.0, 0.0], &[0.0, 10.0]).unwrap();
        assert!(faster.z < 0.0 && close(faster.p, t.p), "{faster:?}");
    }

    #[test]
    fn the_upper_quantile_inverts_the_tail() {
        assert!((normal_upper_quantile(0.025) - 1.959_963_984_540_054).abs() < 1e-12);
        assert!((normal_upper_quantile(0.2) - 0.841_621_233_572_914_3).abs() < 1e-12);
        assert!((normal_upper_quantile(0.5)).abs() < 1e-12);
    }

    #[test]
    fn empty_sides_have_no_test() {
        assert_eq!(mann_whitney(&[0.0, 0.0], &[1.0, 2.0]), None);
        assert_eq!(mann_whitney(&[1.0], &[1.0, 2.0]), None);
    }

    #[test]
    fn fisher_matches_a_hand_computed_table() {
        // [[3, 1], [1, 3]]: P(X ≥ 3) = (16 + 1) / 70.
        assert!(close(fisher_greater(3, 1, 1, 3), 17.0 / 70.0));
        // P(X ≤ 3) = 1 − 1/70.
        assert!(close(fisher_less(3, 1, 1, 3), 69.0 / 70.0));
    }

    #[test]
    fn fisher_with_an_empty_margin_is_one() {
        assert_eq!(fisher_greater(0, 10, 0, 10), 1.0);
        assert_eq!(fisher_greater(0, 0, 3, 10), 1.0);
    }

    #[test]
    fn fisher_far_in_the_tail_stays_positive_and_tiny() {
        // All 50 errors among the 1 000 after requests out of 101 000:
        // C(1000, 50) / C(101000, 50), about 1e-100.
        let p = fisher_greater(50, 950, 0, 100_000);
        assert!(p > 0.0 && p < 1e-90, "{p}");
    }
}
