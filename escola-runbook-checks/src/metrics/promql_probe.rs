//! A PromQL expression through a Prometheus server's instant-query API
//! (`/api/v1/query`) as an alert rule's probe: the value is the scalar, or
//! the one sample of the vector, the server answers now.

use std::collections::BTreeMap;
use std::time::Duration;

use escola_runbook_core::rules::{Probe, Sample, fmt_num};
use escola_runbook_core::{Ctx, async_trait};

use super::checks::SourceConfig;
use super::source::{QueryData, QueryResponse};

/// Why an answer holds no one value for a rule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InstantValueError {
    /// The vector is empty: no series matched (or a filter such as
    /// `and on() ... >= 20` removed it). No data, not a verdict.
    #[error("the query returned an empty vector: no series matched, nothing to judge")]
    EmptyVector,
    /// The vector holds several series: the rule cannot tell which to judge.
    #[error(
        "the query returned {count} series ({shown}); aggregate them (sum, max, ...) to one value"
    )]
    SeveralSeries {
        /// How many.
        count: usize,
        /// The first few, by their labels.
        shown: String,
    },
    /// A range vector or a string.
    #[error("the query returned a {kind}, not a scalar or an instant vector of one series")]
    NotInstant {
        /// `matrix` or `string`.
        kind: &'static str,
    },
    /// The value is NaN (e.g. `histogram_quantile` over no observations).
    #[error("the query's value is NaN: nothing was observed")]
    NotANumber,
}

impl InstantValueError {
    /// Whether the answer means "nothing to judge" rather than an error.
    pub fn is_no_data(&self) -> bool {
        matches!(
            self,
            InstantValueError::EmptyVector | InstantValueError::NotANumber
        )
    }
}

/// The one value of an instant query's answer: its scalar, or the sample
/// of a one-series vector.
pub fn instant_value(data: &QueryData) -> Result<f64, InstantValueError> {
    let value = match data {
        QueryData::Scalar(v) => v.value,
        QueryData::Vector(items) => match items.as_slice() {
            [] => return Err(InstantValueError::EmptyVector),
            [one] => one.value.value,
            several => {
                let shown: Vec<String> = several
                    .iter()
                    .take(3)
                    .map(|s| {
                        let pairs: Vec<String> =
                            s.metric.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
                        format!("{{{}}}", pairs.join(","))
                    })
                    .collect();
                let more = if several.len() > 3 { ", ..." } else { "" };
                return Err(InstantValueError::SeveralSeries {
                    count: several.len(),
                    shown: format!("{}{more}", shown.join(" ")),
                });
            }
        },
        QueryData::Matrix(_) => return Err(InstantValueError::NotInstant { kind: "matrix" }),
        QueryData::String(_) => return Err(InstantValueError::NotInstant { kind: "string" }),
    };
    if value.is_nan() {
        return Err(InstantValueError::NotANumber);
    }
    Ok(value)
}

/// The sample a rule takes from an instant query's answer: the value with
/// Prometheus's warnings as detail, no data, or the error.
pub fn sample_of(response: &QueryResponse) -> Sample {
    match instant_value(&response.data) {
        Ok(value) => {
            let mut detail = BTreeMap::new();
            for (i, w) in response.warnings.iter().chain(&response.infos).enumerate() {
                detail.insert(format!("warning {}", i + 1), w.clone());
            }
            Sample::Value {
                value,
                detail,
                trace_ids: Vec::new(),
            }
        }
        Err(e) if e.is_no_data() => Sample::NoData {
            reason: e.to_string(),
        },
        Err(e) => Sample::Error {
            message: e.to_string(),
        },
    }
}

/// A PromQL expression evaluated now by a Prometheus server.
#[derive(Debug, Clone)]
pub struct PromqlProbe {
    source: SourceConfig,
    expr: String,
}

impl PromqlProbe {
    /// Evaluates `expr` at the Prometheus of `source` (a
    /// [`SourceConfig::prometheus`]; its URL, else the environment's
    /// `prometheus_url`).
    pub fn new(source: SourceConfig, expr: impl Into<String>) -> Self {
        PromqlProbe {
            source,
            expr: expr.into(),
        }
    }
}

#[async_trait]
impl Probe for PromqlProbe {
    fn query(&self) -> String {
        self.expr.clone()
    }

    /// The expression itself: Prometheus computes it.
    fn promql(&self, _interval: Duration) -> Option<String> {
        Some(self.expr.clone())
    }

    async fn sample(&self, ctx: &Ctx) -> Sample {
        let api = match self.source.prometheus_api(ctx) {
            Ok(api) => api,
            Err(e) => {
                return Sample::Error {
                    message: e.to_string(),
                };
            }
        };
        match api.query(&self.expr, None).await {
            Ok(response) => match sample_of(&response) {
                Sample::Value {
                    value,
                    mut detail,
                    trace_ids,
                } => {
                    detail.insert("value".into(), fmt_num(value));
                    Sample::Value {
                        value,
                        detail,
                        trace_ids,
                    }
                }
                other => other,
            },
            Err(e) => Sample::Error {
                message: ctx.redactor().redact(&e.to_string()).into_owned(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::source::decode_answer;
    use super::*;

    fn answer(status: u16, body: &str) -> Sample {
        match decode_answer("http://prom/api/v1/query".into(), "q", status, body) {
            Ok(r) => sample_of(&r),
            Err(e) => Sample::Error {
                message: e.to_string(),
            },
        }
    }

    fn value(s: &Sample) -> f64 {
        match s {
            Sample::Value { value, .. } => *value,
            other => panic!("expected a value, got {other:?}"),
        }
    }

    #[test]
    fn a_scalar_and_a_one_series_vector_are_values() {
        let s = answer(
            200,
            r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000.5,"42.25"]}}"#,
        );
        assert_eq!(value(&s), 42.25);
        let s = answer(
            200,
            r#"{"status":"success","warnings":["partial"],"data":{"resultType":"vector","result":[{"metric":{"job":"app"},"value":[1700000000,"0.125"]}]}}"#,
        );
        assert_eq!(value(&s), 0.125);
        let Sample::Value { detail, .. } = s else {
            unreachable!()
        };
        assert_eq!(detail["warning 1"], "partial");
    }

    #[test]
    fn empty_several_nan_and_error_payloads_are_told_apart() {
        let empty = answer(
            200,
            r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
        );
        assert!(
            matches!(&empty, Sample::NoData { reason } if reason.contains("empty vector")),
            "{empty:?}"
        );
        let several = answer(
            200,
            r#"{"status":"success","data":{"resultType":"vector","result":[
                {"metric":{"route":"/a"},"value":[1,"1"]},
                {"metric":{"route":"/b"},"value":[1,"2"]}]}}"#,
        );
        assert!(
            matches!(&several, Sample::Error { message }
                if message.contains("2 series ({route=\"/a\"} {route=\"/b\"})")
                    && message.contains("aggregate")),
            "{several:?}"
        );
        let nan = answer(
            200,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}}"#,
        );
        assert!(matches!(nan, Sample::NoData { .. }), "{nan:?}");
        let matrix = answer(
            200,
            r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#,
        );
        assert!(
            matches!(&matrix, Sample::Error { message } if message.contains("a matrix")),
            "{matrix:?}"
        );
        let error = answer(
            400,
            r#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected end of input"}"#,
        );
        assert!(
            matches!(&error, Sample::Error { message }
                if message.contains("bad_data") && message.contains("unexpected end of input")),
            "{error:?}"
        );
    }
}
