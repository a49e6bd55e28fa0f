//! The built-in Escola runbook as a runbook source: a run records its
//! configuration (and this crate's version), and a resume rebuilds it from
//! the same configuration or refuses.

use escola_runbook_core::Runbook;
use escola_runbook_core::formats::runbook_source::{self, BuiltinRunbook};

use crate::escola::{self, EscolaConfig, EscolaError};

impl BuiltinRunbook for EscolaConfig {
    type Error = EscolaError;

    fn runbook(&self) -> Result<Runbook, EscolaError> {
        escola::runbook(self)
    }

    fn tool_version(&self) -> String {
        env!("CARGO_PKG_VERSION").to_owned()
    }
}

/// Which runbook to load: the built-in Escola runbook, a TOML file or a
/// Markdown document.
pub type RunbookSource = runbook_source::RunbookSource<EscolaConfig>;

#[cfg(test)]
mod tests {
    use escola_runbook_core::formats::runbook_source::{SourceMismatch, load, load_for_resume};

    use super::*;
    use crate::escola::SmokeTests;

    #[test]
    fn a_configuration_hashes_the_same_every_time_and_differently_when_it_changes() {
        let catalog = crate::catalog();
        let origin = |config: &EscolaConfig| {
            load(&RunbookSource::Builtin(Box::new(config.clone())), &catalog)
                .unwrap()
                .origin
        };
        let config = EscolaConfig::default();
        let (a, b) = (origin(&config), origin(&config.clone()));
        assert_eq!(a.sha256(), b.sha256());
        let other = EscolaConfig {
            webhook_secret: Some("webhook_url".into()),
            smoke: SmokeTests::Manual,
            ..EscolaConfig::default()
        };
        assert_ne!(a.sha256(), origin(&other).sha256());
        let Err(SourceMismatch::ConfigChanged { differences, .. }) =
            load_for_resume(Some(&a), None, &other, &catalog)
        else {
            panic!("another configuration is refused");
        };
        assert_eq!(
            differences,
            [
                r#"`smoke`: {"native":{"check":"smoke","params":{"suite":"escola"}}} then, "manual" now"#,
                r#"`webhook_secret`: null then, "webhook_url" now"#,
            ]
        );
    }
}
