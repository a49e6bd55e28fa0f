//! The Markdown importer on arbitrary input: it must never panic, every
//! step anchor must point into the document at a checkbox or a character
//! boundary, and the imported file must survive a TOML round trip.
#![no_main]

use escola_runbook_core::catalog::Catalog;
use escola_runbook_core::formats::markdown::{ImportOptions, import};
use escola_runbook_core::formats::runbook_file;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(md) = std::str::from_utf8(data) else {
        return;
    };
    // An empty catalog: code blocks still become commands, and bindings
    // keep their parameters as written, which must round-trip too.
    let imported = import(md, &ImportOptions::default(), &Catalog::new());
    for a in &imported.source_map.steps {
        assert!(a.evidence_at <= md.len() && md.is_char_boundary(a.evidence_at));
        if let Some(cb) = &a.checkbox {
            assert_eq!(md.as_bytes()[cb.start], b'[');
            assert_eq!(md.as_bytes()[cb.end - 1], b']');
        }
        if let Some(at) = a.insert_checkbox_at {
            assert!(md.is_char_boundary(at));
        }
    }
    let toml = imported
        .file
        .to_toml()
        .expect("an imported file serializes");
    let back = runbook_file::parse(&toml, "fuzz.toml").expect("an imported file parses back");
    assert_eq!(back, imported.file);
});
