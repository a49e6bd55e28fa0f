//! The built-in checks: the one place that lists them. No check module
//! imports this file; the CLI, the built-in runbook and embedders start
//! from [`catalog`] and may [`register`](Catalog::register) their own.

use escola_runbook_core::catalog::Catalog;

/// A catalog of every built-in check.
pub fn catalog() -> Catalog {
    let mut catalog = Catalog::new();
    register(&mut catalog);
    catalog
}

/// Adds every built-in check, and the probe rules files measure with, to
/// `catalog`.
pub fn register(catalog: &mut Catalog) -> &mut Catalog {
    #[cfg(feature = "metrics")]
    catalog.register_probe::<crate::metrics::rule_probe::MetricsProbeParams>();
    catalog.register::<crate::command::CommandParams>();
    #[cfg(feature = "http")]
    catalog
        .register::<crate::cache_purge::CachePurgeParams>()
        .register::<crate::http_json::HttpJsonParams>()
        .register::<crate::notify::NotifyParams>()
        .register::<crate::smoke::SmokeParams>();
    #[cfg(feature = "metrics")]
    catalog
        .register::<crate::metrics::checks::EndpointParams>()
        .register::<crate::metrics::checks::BaselineParams>()
        .register::<crate::metrics::checks::LatencyParams>()
        .register::<crate::metrics::checks::CompareParams>()
        .register::<crate::metrics::checks::ErrorRatioParams>();
    #[cfg(feature = "readiness")]
    catalog
        .register::<crate::coverage::CoverageParams>()
        .register::<crate::changelog::ChangelogParams>()
        .register::<crate::docs_freshness::DocsFreshnessParams>();
    #[cfg(feature = "logs")]
    catalog
        .register::<crate::log_scan::LogScanParams>()
        .register::<crate::log_scan::RecordTimeParams>();
    #[cfg(feature = "mysql")]
    catalog
        .register::<crate::db::DbSnapshotParams>()
        .register::<crate::db::SnapshotFreshParams>()
        .register::<crate::db::LossEstimateParams>()
        .register::<crate::db::MigrationsParams>()
        .register::<crate::db::SyncBacklogParams>();
    catalog
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_get_a_suggestion() {
        let catalog = catalog();
        let err = catalog.find("comand").unwrap_err();
        assert_eq!(err.suggestion.as_deref(), Some("command"));
        let err = catalog
            .build_from_pairs("command", &[("shel".into(), "true".into())])
            .err()
            .unwrap();
        assert!(err.to_string().contains("did you mean `shell`"), "{err}");
    }

    #[test]
    fn every_built_in_is_listed_with_a_summary() {
        let catalog = catalog();
        let names: Vec<&str> = catalog.entries().map(|e| e.name()).collect();
        let mut expected = vec!["command", "smoke", "metrics-endpoint"];
        #[cfg(feature = "readiness")]
        expected.extend(["coverage", "changelog", "docs-freshness"]);
        #[cfg(feature = "logs")]
        expected.extend(["log-scan", "record-time"]);
        #[cfg(feature = "mysql")]
        expected.extend([
            "db-snapshot",
            "snapshot-fresh",
            "db-loss-estimate",
            "migrations-consistent",
            "sync-backlog",
        ]);
        for name in expected {
            assert!(names.contains(&name), "{name} in {names:?}");
        }
        assert!(catalog.entries().all(|e| !e.summary().is_empty()));
    }
}
