//! Mutexes a panicking handler may have poisoned.

use std::sync::{Mutex, MutexGuard};

/// Locks `m` even if a panicking thread poisoned it: the data behind it
/// stays consistent per operation.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}
