//! The exposition parser must never panic, and what it accepts must be
//! consistent: every sample it returns carries the line it came from, and
//! the streaming iterator agrees with the grouping parser.
#![no_main]

use escola_runbook_checks::metrics::compute;
use escola_runbook_checks::metrics::parse::{Entry, Format, Lines, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for format in [Format::Prometheus, Format::OpenMetrics] {
        let streamed: Result<Vec<_>, _> = Lines::new(text, format).collect();
        match parse(text, format) {
            Ok(exposition) => {
                let samples = streamed
                    .as_ref()
                    .map(|entries| {
                        entries
                            .iter()
                            .filter(|e| matches!(e, Entry::Sample(_)))
                            .count()
                    })
                    .unwrap_or(usize::MAX);
                assert_eq!(
                    samples,
                    exposition.sample_count(),
                    "streaming and grouping disagree"
                );
                for family in &exposition.families {
                    for s in &family.samples {
                        assert!(s.line >= 1);
                    }
                }
                // Computation on whatever was parsed must not panic either.
                for family in &exposition.families {
                    let series = compute::series(&exposition, &format!("{}_bucket", family.name));
                    for h in compute::histograms::<&str>(&series, None) {
                        let _ = h.quantile(0.95);
                        let _ = h.share_above(1.0);
                    }
                }
            }
            Err(e) => assert!(e.line >= 1),
        }
    }
});
