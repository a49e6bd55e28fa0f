//! Why a report could not be produced.

/// A report could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// JSON serialization failed.
    #[error("cannot render the JSON report: {0}")]
    Json(#[from] serde_json::Error),
    /// JUnit serialization failed.
    #[cfg(feature = "junit")]
    #[error("cannot render the JUnit report: {0}")]
    Junit(String),
    /// A plot could not be drawn.
    #[cfg(feature = "plots")]
    #[error("cannot draw a plot: {0}")]
    Plot(String),
    /// A report file could not be written.
    #[error("cannot write report {path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}
