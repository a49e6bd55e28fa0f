//! Mutexes a panicking plugin may have poisoned.

use std::sync::{Mutex, MutexGuard};

/// Locks `m` even if a panicking thread poisoned it: the data behind these
/// mutexes (event lists, the record, the journal) stays consistent per
/// operation, and a crashed plugin must not stop the run from recording.
pub(crate) fn lock_unpoisoned<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}
