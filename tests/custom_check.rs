//! `cargo run --example custom_check` as a team uses it: its own check,
//! registered in the catalog, named in a TOML runbook and in a Markdown
//! binding like a built-in one, run, and exported back.

#[path = "../examples/custom_check.rs"]
#[allow(dead_code)] // the example's `main`
mod custom_check;

use escola_runbook_core::formats::markdown::{self, ImportOptions};
use escola_runbook_core::formats::runbook_file::{self, RunbookFile};
use escola_runbook_core::{Check, Status, StepKind, Verdict, exit};

#[tokio::test]
async fn a_registered_check_runs_from_a_toml_runbook() {
    let record = custom_check::run(custom_check::RUNBOOK, std::io::sink())
        .await
        .unwrap();
    assert_eq!(record.verdict, Some(Verdict::Succeeded));
    let step = record
        .steps()
        .map(|(_, s)| s)
        .find(|s| s.outline.id == "release-tagged")
        .unwrap();
    assert_eq!(step.status(), Status::Passed, "{step:#?}");

    // The same runbook with a tag not released yet fails that step.
    let missing = custom_check::RUNBOOK.replace("tag = \"v2.4.0\"", "tag = \"v2.5.0\"");
    let record = custom_check::run(&missing, std::io::sink()).await.unwrap();
    assert_eq!(record.exit_code, Some(exit::STEP_FAILED));
}

#[test]
fn the_file_format_checks_its_parameters_and_names_it() {
    let catalog = custom_check::catalog();
    let typo =
        custom_check::RUNBOOK.replace("check = \"release-tagged\"", "check = \"relase-tagged\"");
    let err = runbook_file::load_str(&typo, "release.toml", &catalog)
        .unwrap_err()
        .to_string();
    assert!(err.contains("did you mean `release-tagged`?"), "{err}");
    let bad = custom_check::RUNBOOK.replace("tag = \"v2.4.0\"", "tga = \"v2.4.0\"");
    let err = runbook_file::load_str(&bad, "release.toml", &catalog)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("release.toml:15:18:")
            && err.contains(
                "parameter `tga` is not a parameter of `release-tagged` (did you mean `tag`?)"
            ),
        "{err}"
    );
    // Without the registration the name is unknown: nothing is built in.
    let err = runbook_file::load_str(
        custom_check::RUNBOOK,
        "release.toml",
        &escola_runbook_checks::catalog(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("no built-in check is called `release-tagged`"),
        "{err}"
    );
}

#[test]
fn a_markdown_binding_names_it_and_an_export_writes_it_back() {
    let catalog = custom_check::catalog();
    let doc = "## Pré-Deploy\n- [ ] Release tag exists\n  <!-- check: release-tagged tag=v2.4.0 released=v2.3.1,v2.4.0 -->\n";
    let loaded =
        markdown::load_str(doc, "RUNBOOK.md", &ImportOptions::default(), &catalog).unwrap();
    assert!(
        loaded.imported.warnings.is_empty(),
        "{:?}",
        loaded.imported.warnings
    );
    let (_, step) = loaded.runbook.find_step("release-tag-exists").unwrap();
    let StepKind::Check(check) = &step.kind else {
        panic!("the binding makes a check")
    };
    let expected = custom_check::ReleaseTagged {
        tag: "v2.4.0".into(),
        released: vec!["v2.3.1".into(), "v2.4.0".into()],
    };
    assert_eq!(check.params(), expected.params());

    let (file, warnings) = RunbookFile::from_runbook(&loaded.runbook, &catalog);
    assert!(warnings.is_empty(), "{warnings:?}");
    let again = runbook_file::load_str(&file.to_toml().unwrap(), "again.toml", &catalog).unwrap();
    let (_, step) = again.runbook.find_step("release-tag-exists").unwrap();
    let StepKind::Check(back) = &step.kind else {
        panic!("still a check")
    };
    assert_eq!(back.params(), expected.params());
    let docs = catalog.find("release-tagged").unwrap().param_docs();
    assert_eq!(docs[1].name, "tag");
    assert!(docs[1].required && docs[1].help == "the tag the deploy ships (`v2.4.0`)");
}
