//! Where a snapshot's files are read from: a local directory, or (feature
//! `s3`) an object-store prefix. Verify and restore read through
//! [`SnapshotFiles`] only, so one code path checks and restores both.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// The files of one snapshot, read as streams (never whole into memory).
///
/// `open` blocks: call it from a blocking thread (`spawn_blocking`), as
/// verify and restore do.
pub trait SnapshotFiles: Send + Sync {
    /// The snapshot, for messages: a path or an `s3://` URL (never
    /// credentials).
    fn location(&self) -> PathBuf;

    /// The file `name` of the snapshot, for messages.
    fn locate(&self, name: &str) -> PathBuf {
        self.location().join(name)
    }

    /// A reader of the file `name`; an error of kind `NotFound` when the
    /// snapshot has no such file.
    fn open(&self, name: &str) -> io::Result<Box<dyn Read + Send>>;
}

/// A snapshot directory on the local filesystem.
#[derive(Debug, Clone)]
pub struct LocalDir(pub PathBuf);

impl LocalDir {
    /// The snapshot in `dir`.
    pub fn new(dir: &Path) -> Self {
        LocalDir(dir.to_owned())
    }
}

impl SnapshotFiles for LocalDir {
    fn location(&self) -> PathBuf {
        self.0.clone()
    }

    fn open(&self, name: &str) -> io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(File::open(self.0.join(name))?))
    }
}

/// Runs the blocking `work` (reading snapshot files) off the async
/// runtime's threads; a panic in it comes back as an I/O error.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| io::Error::other(format!("reading the snapshot stopped: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_dir_opens_its_files_and_tells_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), b"x").unwrap();
        let files = LocalDir::new(dir.path());
        let mut s = String::new();
        files.open("a").unwrap().read_to_string(&mut s).unwrap();
        assert_eq!(s, "x");
        assert_eq!(files.locate("a"), dir.path().join("a"));
        assert_eq!(
            files.open("b").err().map(|e| e.kind()),
            Some(io::ErrorKind::NotFound)
        );
    }
}
