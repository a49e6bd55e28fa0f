//! The built-in checks: the one place that lists them. No check module
//! imports this file; the CLI, the built-in runbook and embedders start
//! from [`catalog`] and may [`register`](Catalog::register) their own.

use escola_runbook_core::catalog::Catalog;

use crate::legacy_spec;

/// A catalog of every built-in check.
pub fn catalog() -> Catalog {
    let mut catalog = Catalog::new();
    register(&mut catalog);
    catalog
}

/// Adds every built-in check, and the probe rules files measure with, to
/// `catalog`.
pub fn register(catalog: &mut Catalog) -> &mut Catalog {
    catalog.register_probe::<crate::metrics::rule_probe::MetricsProbeParams>();
    catalog.register::<crate::command::CommandParams>();
    // Checks still declared as parameter lists, through the adapter
    // (removed when every check has a params struct, issue #13).
    let mut specs = vec![
        crate::coverage::spec(),
        crate::changelog::spec(),
        crate::docs_freshness::spec(),
        crate::log_scan::spec(),
        crate::log_scan::record_time_spec(),
        crate::http_json::spec(),
        crate::cache_purge::spec(),
        crate::notify::spec(),
        crate::smoke::spec(),
    ];
    specs.extend(crate::metrics::checks::specs());
    specs.extend(crate::db::checks::specs());
    for spec in specs {
        legacy_spec::register(catalog, spec);
    }
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
        for name in [
            "command",
            "smoke",
            "coverage",
            "metrics-endpoint",
            "db-snapshot",
        ] {
            assert!(names.contains(&name), "{name} in {names:?}");
        }
        assert!(catalog.entries().all(|e| !e.summary().is_empty()));
    }
}
