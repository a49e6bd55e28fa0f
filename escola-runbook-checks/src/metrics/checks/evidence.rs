//! Evidence text the metrics checks share: how a window, a group of
//! labels, a quantile and bucket bounds are written.

use escola_runbook_core::{Ctx, Outcome};

use crate::metrics::compute::Histogram;
use crate::metrics::source::{MetricsData, Window};
use crate::metrics::summary::trim_float;

/// `o` with the window, and the source's provenance and warnings (masked).
pub(super) fn with_data_evidence(
    ctx: &Ctx,
    mut o: Outcome,
    data: &MetricsData,
    window: Window,
) -> Outcome {
    o = o.with_evidence("window", window.describe());
    for p in &data.provenance {
        o = o.with_evidence("how", ctx.redactor().redact(p).into_owned());
    }
    for w in &data.warnings {
        o = o.with_evidence("source warning", ctx.redactor().redact(w).into_owned());
    }
    o
}

/// `o` with the source it read (as [`fetch`](super::gather::fetch)
/// describes it), then the window, provenance and warnings of its `data`.
pub(super) fn with_source_evidence(
    ctx: &Ctx,
    o: Outcome,
    described: &str,
    data: &MetricsData,
    window: Window,
) -> Outcome {
    with_data_evidence(ctx, o.with_evidence("source", described), data, window)
}

/// `{route="/v1/escolas"}`, or nothing for the unlabelled histogram.
pub(super) fn labels_text(h: &Histogram) -> String {
    if h.labels.is_empty() {
        return String::new();
    }
    let inner = h
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect::<Vec<_>>()
        .join(",");
    format!("{{{inner}}}")
}

/// `P95` for 0.95, `P99.9` for 0.999.
pub(super) fn quantile_name(q: f64) -> String {
    let pct = q * 100.0;
    format!("P{}", trim_float(pct))
}

/// `0.1, 0.5, 1, 2.5`.
pub(super) fn bounds_text(bounds: &[f64]) -> String {
    bounds
        .iter()
        .map(|b| trim_float(*b))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_and_bounds_read_as_written() {
        assert_eq!(quantile_name(0.95), "P95");
        assert_eq!(quantile_name(0.999), "P99.9");
        assert_eq!(bounds_text(&[0.1, 1.0, 2.5]), "0.1, 1, 2.5");
        let h = Histogram {
            labels: [("route".to_owned(), "/v1".to_owned())].into(),
            buckets: Vec::new(),
        };
        assert_eq!(labels_text(&h), r#"{route="/v1"}"#);
    }
}
