//! Prometheus metrics: an exposition parser, the quantiles and ratios
//! Prometheus itself would compute, two sources behind one trait (the app's
//! `/metrics` or a Prometheus HTTP API), and the checks the runbook needs.
//!
//! ```
//! use escola_runbook_checks::metrics::{compute, parse};
//!
//! let text = "# TYPE http_request_duration_seconds histogram\n\
//! http_request_duration_seconds_bucket{le=\"0.5\"} 80
//! http_request_duration_seconds_bucket{le=\"1\"} 95
//! http_request_duration_seconds_bucket{le=\"+Inf\"} 100
//! ";
//! let exposition = parse::parse(text, parse::Format::Prometheus)?;
//! let buckets = compute::series(&exposition, "http_request_duration_seconds_bucket");
//! let h = &compute::histograms::<&str>(&buckets, Some(&[]))[0];
//! // rank 95 falls exactly on the le="1" bucket
//! assert_eq!(h.quantile(0.95).value, 1.0);
//! // the exact share of requests slower than 0.5s, no interpolation
//! assert_eq!(h.share_above(0.5), Some(0.2));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod bytes;
pub mod checks;
pub mod compare;
pub mod compute;
pub mod dashboard;
pub mod parse;
pub mod probe;
pub mod promql_probe;
pub mod rule_probe;
pub mod selector;
pub mod source;
pub mod stats;
mod summary;

pub use checks::{
    CompareCheck, ErrorRatioCheck, LatencyBaselineCheck, LatencyCheck, MetricsEndpointCheck,
    SourceConfig,
};
pub use source::{
    MetricsData, MetricsQuery, MetricsSource, PrometheusSource, ScrapeSource, SourceError, Window,
};
pub use summary::{SeriesSummary, Summary, SummaryRequest, summarize};
