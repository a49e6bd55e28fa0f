//! "Latency no worse than before": the window after the deploy against the
//! baseline `metrics-baseline` recorded, by the Mann-Whitney U test — a
//! release that doubles latency below every fixed limit still fails here.

use std::sync::Arc;
use std::time::Duration;

use escola_runbook_core::catalog::{CheckConfig, ParamsError};
use escola_runbook_core::{Check, CheckParams, Ctx, Description, Outcome, async_trait};

use super::evidence::{with_data_evidence, with_source_evidence};
use super::gather::fetch;
use super::params::{CompareParams, SourceConfig, check_min_requests};
use crate::metrics::compare::{Verdict, compare_histograms, histogram_of_value};
use crate::metrics::source::{MetricsQuery, Window};
use crate::metrics::summary::trim_float;

/// "Latency no worse than before": fails when the window's requests are
/// significantly slower than the recorded baseline's, by at least the
/// minimum effect.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareCheck {
    params: CompareParams,
}

impl CompareCheck {
    /// The last 5 minutes of `source` against `baseline.latency.histogram`,
    /// with the default thresholds.
    pub fn new(source: SourceConfig) -> Self {
        CompareCheck {
            params: CompareParams::new(source),
        }
    }

    escola_runbook_core::setters! {
        /// The window after the deploy.
        window(window: Window) => params.window = window;

        /// The histogram family (without `_bucket`).
        histogram(name: impl Into<String>) => params.histogram = name.into();
    }
}

impl CheckConfig for CompareParams {
    const NAME: &'static str = "metrics-compare";

    fn build(self) -> Result<Arc<dyn Check>, ParamsError> {
        check_min_requests(Self::NAME, self.min_requests)?;
        self.thresholds()
            .validate()
            .map_err(|e| ParamsError::invalid(Self::NAME, e.name, e.to_string()))?;
        Ok(Arc::new(CompareCheck { params: self }))
    }
}

/// The longest window a dry-run reads: it shows the judge answers without
/// holding the rehearsal for the real run's minutes.
pub const DRY_RUN_WINDOW: Duration = Duration::from_secs(10);

fn dry_run_window(ctx: &Ctx, window: Window) -> Window {
    match window {
        Window::Last(d) if ctx.is_dry_run() && d > DRY_RUN_WINDOW => Window::Last(DRY_RUN_WINDOW),
        other => other,
    }
}

#[async_trait]
impl Check for CompareCheck {
    fn describe(&self) -> Description {
        let p = &self.params;
        Description::read_only(
            "metrics-compare",
            format!(
                "latency of `{}` over {} from {} no worse than the baseline (Mann-Whitney, alpha {}, least shift {})",
                p.histogram,
                p.window.describe(),
                p.source.url_text(),
                trim_float(p.alpha),
                trim_float(p.min_effect)
            ),
        )
        .needs(p.baseline.clone())
    }

    fn params(&self) -> Option<CheckParams> {
        CheckParams::of(&self.params).ok()
    }

    async fn run(&self, ctx: &Ctx) -> Outcome {
        let p = &self.params;
        let before = match ctx.value(&p.baseline) {
            Ok(v) => match histogram_of_value(v) {
                Some(h) => h,
                None => {
                    return Outcome::check_error(format!(
                        "`{}` is not a recorded histogram (metrics-baseline records one)",
                        p.baseline
                    ));
                }
            },
            Err(e) => {
                return Outcome::check_error(format!(
                    "{e}: a metrics-baseline step before this one records it"
                ));
            }
        };
        let query = MetricsQuery {
            histogram: Some(p.histogram.clone()),
            counter: None,
            by: Some(Vec::new()),
            window: dry_run_window(ctx, p.window),
            ..MetricsQuery::default()
        };
        let (data, described) = match fetch(ctx, &p.source, &query).await {
            Ok(d) => d,
            Err(o) => return o,
        };
        let Some(after) = data.histograms.first() else {
            return with_data_evidence(
                ctx,
                Outcome::no_data(format!("no `{}_bucket` series at {described}", p.histogram)),
                &data,
                p.window,
            );
        };
        let c = compare_histograms(&before, after, &p.thresholds());
        let line = c.line();
        let o = match c.verdict {
            Verdict::Regressed => Outcome::failed(line),
            Verdict::Improved | Verdict::Unchanged => Outcome::passed(line),
            Verdict::Inconclusive => Outcome::warned(line),
            Verdict::NoData => Outcome::no_data(line),
        };
        let mut o = with_source_evidence(ctx, o, &described, &data, p.window)
            .with_evidence("verdict", c.verdict.label());
        if let Some(t) = c.test {
            o = o
                .with_evidence("effect", trim_float(t.effect))
                .with_evidence("u", trim_float(t.u))
                .with_evidence("z", trim_float(t.z))
                .with_evidence("p", format!("{:e}", t.p))
                .with_measurement("latency_shift", t.effect - 0.5, None);
        }
        o
    }
}
