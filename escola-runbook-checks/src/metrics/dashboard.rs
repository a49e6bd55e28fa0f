//! Dashboards the team already uses: panels of PromQL or SQL queries, with
//! the alert rules' limits drawn as threshold lines, written as a Grafana
//! dashboard (its JSON model, schema 39) that imports into any Grafana with
//! a Prometheus and a MySQL data source, chosen on import.

use serde_json::{Value, json};

/// A dashboard to write.
#[derive(Debug, Clone, PartialEq)]
pub struct Dashboard {
    /// Its title.
    pub title: String,
    /// Its stable id, so a re-import replaces it.
    pub uid: String,
    /// The panels, two to a row.
    pub panels: Vec<Panel>,
}

/// One time-series panel.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// Its title (the runbook's words).
    pub title: String,
    /// Grafana's unit of the values (`s`, `percent`, `short`).
    pub unit: &'static str,
    /// What it draws.
    pub queries: Vec<Query>,
    /// A limit drawn as a red line (an alert rule's).
    pub threshold: Option<f64>,
}

/// A series of a panel.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    /// From Prometheus.
    PromQl {
        /// The legend.
        legend: String,
        /// The expression.
        expr: String,
    },
    /// From the application database (a time column `time` and values).
    Sql {
        /// The legend.
        legend: String,
        /// The query.
        sql: String,
    },
}

/// The data source variables the dashboard asks for on import.
const PROMETHEUS: &str = "prometheus";
const MYSQL: &str = "mysql";
/// Panels per row, and a panel's size in Grafana's grid (24 columns).
const PER_ROW: usize = 2;
const WIDTH: usize = 12;
const HEIGHT: usize = 8;

impl Dashboard {
    /// The dashboard as Grafana's JSON model.
    pub fn to_grafana(&self) -> Value {
        let panels: Vec<Value> = self
            .panels
            .iter()
            .enumerate()
            .map(|(i, p)| p.to_grafana(i))
            .collect();
        json!({
            "uid": self.uid,
            "title": self.title,
            "tags": ["escola-runbook"],
            "schemaVersion": 39,
            "version": 1,
            "editable": true,
            "time": { "from": "now-24h", "to": "now" },
            "refresh": "30s",
            "timezone": "browser",
            "templating": { "list": [
                datasource_variable(PROMETHEUS, "Prometheus"),
                datasource_variable(MYSQL, "MySQL"),
            ]},
            "annotations": { "list": [] },
            "panels": panels,
        })
    }
}

fn datasource_variable(kind: &str, label: &str) -> Value {
    json!({
        "name": kind,
        "label": label,
        "type": "datasource",
        "query": kind,
        "hide": 0,
        "current": {},
        "options": [],
        "refresh": 1,
    })
}

impl Panel {
    fn to_grafana(&self, index: usize) -> Value {
        let sql = matches!(self.queries.first(), Some(Query::Sql { .. }));
        let source = if sql { MYSQL } else { PROMETHEUS };
        let targets: Vec<Value> = self
            .queries
            .iter()
            .enumerate()
            .map(|(i, q)| {
                let ref_id = ref_id(i);
                match q {
                    Query::PromQl { legend, expr } => json!({
                        "refId": ref_id,
                        "datasource": { "type": "prometheus", "uid": format!("${{{PROMETHEUS}}}") },
                        "expr": expr,
                        "legendFormat": legend,
                    }),
                    Query::Sql { legend, sql } => json!({
                        "refId": ref_id,
                        "datasource": { "type": "mysql", "uid": format!("${{{MYSQL}}}") },
                        "rawQuery": true,
                        "editorMode": "code",
                        "format": "time_series",
                        "rawSql": sql,
                        "alias": legend,
                    }),
                }
            })
            .collect();
        let mut steps = vec![json!({ "color": "green", "value": null })];
        if let Some(limit) = self.threshold {
            steps.push(json!({ "color": "red", "value": limit }));
        }
        json!({
            "id": index + 1,
            "type": "timeseries",
            "title": self.title,
            "datasource": { "type": if sql { "mysql" } else { "prometheus" }, "uid": format!("${{{source}}}") },
            "gridPos": {
                "h": HEIGHT,
                "w": WIDTH,
                "x": (index % PER_ROW) * WIDTH,
                "y": (index / PER_ROW) * HEIGHT,
            },
            "targets": targets,
            "fieldConfig": {
                "defaults": {
                    "unit": self.unit,
                    "thresholds": { "mode": "absolute", "steps": steps },
                    "custom": {
                        "thresholdsStyle": {
                            "mode": if self.threshold.is_some() { "line" } else { "off" }
                        }
                    },
                },
                "overrides": [],
            },
            "options": {
                "legend": { "displayMode": "list", "placement": "bottom", "showLegend": true },
                "tooltip": { "mode": "multi", "sort": "none" },
            },
        })
    }
}

/// `A`, `B`, ... `Z`, `AA`, ...: Grafana's query ids.
fn ref_id(i: usize) -> String {
    let letter = |n: usize| char::from(b'A' + (n % 26) as u8);
    if i < 26 {
        letter(i).to_string()
    } else {
        format!("{}{}", letter(i / 26 - 1), letter(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panels_tile_two_to_a_row_with_their_limits() {
        let panel = |title: &str, threshold| Panel {
            title: title.into(),
            unit: "s",
            queries: vec![Query::PromQl {
                legend: "P95".into(),
                expr: "up".into(),
            }],
            threshold,
        };
        let d = Dashboard {
            title: "t".into(),
            uid: "u".into(),
            panels: vec![panel("a", Some(2.0)), panel("b", None), panel("c", None)],
        }
        .to_grafana();
        let panels = d["panels"].as_array().unwrap();
        assert_eq!(panels[1]["gridPos"]["x"], 12);
        assert_eq!(panels[2]["gridPos"]["y"], 8);
        assert_eq!(
            panels[0]["fieldConfig"]["defaults"]["thresholds"]["steps"][1]["value"],
            2.0
        );
        assert_eq!(
            panels[1]["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"],
            "off"
        );
        assert_eq!(ref_id(0), "A");
        assert_eq!(ref_id(27), "AB");
    }
}
