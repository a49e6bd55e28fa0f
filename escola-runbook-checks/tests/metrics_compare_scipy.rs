//! The before/after judge's statistics agree with SciPy, the reference a
//! statistician would check them against: `mannwhitneyu` (two-sided,
//! asymptotic, continuity corrected) on 250 random histogram pairs and
//! `fisher_exact` (one-sided, both tails) on 250 random error tables, to
//! 1e-9 relative — zero counts, everything in one bucket, sparse errors and
//! far tails included.
//!
//! SciPy runs in a Python found at `ESCOLA_SCIPY_PYTHON`, else
//! `.ci/python/bin/python` (where `.ci/run` installs it), else `python3`.
//! Without SciPy the test is skipped with a reason, except under
//! `ESCOLA_REQUIRE_SERVICES=1`, where it fails.

use std::path::PathBuf;
use std::process::Command;

use escola_runbook_checks::metrics::stats::{fisher_greater, fisher_less, mann_whitney};
use serde_json::{Value, json};

/// SciPy's side: reads the cases, prints the figures.
const SCIPY: &str = r#"
import json, sys
import numpy as np
from scipy.stats import mannwhitneyu, fisher_exact
cases = json.load(open(sys.argv[1]))
out = {"latency": [], "errors": []}
for after, before in cases["latency"]:
    x = np.repeat(np.arange(len(after)), after)
    y = np.repeat(np.arange(len(before)), before)
    r = mannwhitneyu(x, y, use_continuity=True, alternative="two-sided", method="asymptotic")
    out["latency"].append([float(r.statistic), float(r.pvalue)])
for ea, oa, eb, ob in cases["errors"]:
    t = [[ea, oa], [eb, ob]]
    out["errors"].append([float(fisher_exact(t, alternative="greater").pvalue),
                          float(fisher_exact(t, alternative="less").pvalue)])
print(json.dumps(out))
"#;

/// splitmix64: the same cases on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

fn histogram_pairs(rng: &mut Rng) -> Vec<(Vec<u64>, Vec<u64>)> {
    let mut cases = Vec::new();
    while cases.len() < 250 {
        let buckets = 1 + rng.below(12) as usize;
        let scale = [1, 3, 20, 300, 2000][rng.below(5) as usize];
        let side = |rng: &mut Rng| -> Vec<u64> {
            match rng.below(6) {
                // Everything in one bucket.
                0 => {
                    let at = rng.below(buckets as u64) as usize;
                    (0..buckets)
                        .map(|i| if i == at { 1 + rng.below(scale) } else { 0 })
                        .collect()
                }
                // Sparse: most buckets empty.
                1 => (0..buckets)
                    .map(|_| {
                        if rng.below(3) == 0 {
                            rng.below(scale)
                        } else {
                            0
                        }
                    })
                    .collect(),
                _ => (0..buckets).map(|_| rng.below(scale + 1)).collect(),
            }
        };
        let (after, before) = (side(rng), side(rng));
        // SciPy refuses an empty sample; so does the judge (no_data).
        if after.iter().sum::<u64>() > 0 && before.iter().sum::<u64>() > 0 {
            cases.push((after, before));
        }
    }
    // Both sides wholly in the same bucket: every pair tied.
    cases.push((vec![0, 7, 0], vec![0, 3, 0]));
    cases
}

fn error_tables(rng: &mut Rng) -> Vec<[u64; 4]> {
    let mut cases: Vec<[u64; 4]> = (0..250)
        .map(|_| {
            let errors = [0, 1, 4, 30, 400][rng.below(5) as usize];
            let requests = [10, 200, 5000, 60000][rng.below(4) as usize];
            [
                rng.below(errors + 1),
                rng.below(requests),
                rng.below(errors + 1),
                rng.below(requests),
            ]
        })
        .collect();
    // Zero errors on both sides, and a far tail.
    cases.push([0, 500, 0, 800]);
    cases.push([40, 4960, 0, 5000]);
    cases
}

fn python() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let candidates = std::env::var_os("ESCOLA_SCIPY_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain([root.join(".ci/python/bin/python"), PathBuf::from("python3")]);
    for candidate in candidates {
        let ok = Command::new(&candidate)
            .args(["-c", "import scipy, numpy"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(candidate);
        }
    }
    None
}

/// Equal to 1e-9 relative. Below 1e-300 SciPy's normal tail underflows to
/// 0 where ours goes on into subnormal numbers: there both are zero.
fn agrees(ours: f64, scipy: f64) -> bool {
    const UNDERFLOW: f64 = 1e-300;
    (ours < UNDERFLOW && scipy < UNDERFLOW)
        || (ours - scipy).abs() <= 1e-9 * scipy.abs().max(ours.abs())
}

#[test]
fn the_judge_agrees_with_scipy() {
    let Some(python) = python() else {
        let reason = "no Python with SciPy (set ESCOLA_SCIPY_PYTHON, or pip install scipy)";
        if std::env::var("ESCOLA_REQUIRE_SERVICES").as_deref() == Ok("1") {
            panic!("ESCOLA_REQUIRE_SERVICES=1 but {reason}");
        }
        eprintln!("skipped: {reason}");
        return;
    };
    let mut rng = Rng(0x5EED_2026);
    let histograms = histogram_pairs(&mut rng);
    let tables = error_tables(&mut rng);
    let dir = tempfile::tempdir().unwrap();
    let cases = dir.path().join("cases.json");
    std::fs::write(
        &cases,
        json!({ "latency": histograms, "errors": tables }).to_string(),
    )
    .unwrap();
    let output = Command::new(&python)
        .args(["-c", SCIPY])
        .arg(&cases)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "SciPy failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let scipy: Value = serde_json::from_slice(&output.stdout).unwrap();

    // The cases must exercise the whole range, not only certain verdicts.
    let (mut checked, mut moderate, mut tiny) = (0, 0, 0);
    let mut spread = |p: f64| {
        if p > 1e-3 {
            moderate += 1;
        } else if p < 1e-12 {
            tiny += 1;
        }
    };
    for ((after, before), expected) in histograms.iter().zip(scipy["latency"].as_array().unwrap()) {
        let f = |c: &[u64]| c.iter().map(|&n| n as f64).collect::<Vec<_>>();
        let ours = mann_whitney(&f(after), &f(before)).unwrap();
        let (u, p) = (expected[0].as_f64().unwrap(), expected[1].as_f64().unwrap());
        assert!(
            agrees(ours.u, u),
            "u {} vs SciPy {u} for after {after:?} before {before:?}",
            ours.u
        );
        assert!(
            agrees(ours.p, p),
            "p {} vs SciPy {p} for after {after:?} before {before:?}",
            ours.p
        );
        spread(p);
        checked += 1;
    }
    assert_eq!(checked, histograms.len());

    for (&[ea, oa, eb, ob], expected) in tables.iter().zip(scipy["errors"].as_array().unwrap()) {
        let (greater, less) = (expected[0].as_f64().unwrap(), expected[1].as_f64().unwrap());
        let ours = fisher_greater(ea, oa, eb, ob);
        assert!(
            agrees(ours, greater),
            "greater {ours} vs SciPy {greater} for [[{ea}, {oa}], [{eb}, {ob}]]"
        );
        let ours = fisher_less(ea, oa, eb, ob);
        assert!(
            agrees(ours, less),
            "less {ours} vs SciPy {less} for [[{ea}, {oa}], [{eb}, {ob}]]"
        );
        spread(greater);
        spread(less);
        checked += 1;
    }
    assert_eq!(checked, histograms.len() + tables.len());
    eprintln!("{checked} cases agree: {moderate} p values above 1e-3, {tiny} below 1e-12");
    assert!(
        moderate >= 200 && tiny >= 50,
        "{moderate} moderate, {tiny} tiny p values"
    );
}
