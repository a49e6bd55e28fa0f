//! The duration parser on arbitrary text: it must never panic, whatever it
//! accepts lies in the range asked for, whatever it refuses is named in the
//! message, and what it accepts reads back the same from its exact text.
#![no_main]

use escola_runbook_core::duration::{self, Range};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for range in [Range::STANDARD, Range::ZERO_OR_MORE, Range::LOOK_BACK] {
        match duration::parse_in(text, range) {
            Ok(d) => {
                assert!(range.contains(d), "{text:?} gave {d:?} outside {range}");
                assert_eq!(duration::parse_in(&duration::exact(d), range), Ok(d));
            }
            Err(e) => assert!(e.to_string().contains(text), "{e}"),
        }
    }
});
