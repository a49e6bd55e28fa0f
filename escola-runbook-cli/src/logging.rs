//! Debug logs on stderr, masked: a secret registered with the run's redactor
//! never reaches the terminal through a log line either.

use std::io::Write;

use escola_runbook_core::Redactor;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Installs the subscriber: `-v` or `RUST_LOG` turn logs on; off otherwise.
pub fn init(verbose: bool, redactor: Redactor) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::new(spec),
        _ if verbose => EnvFilter::new("debug,hyper=info,reqwest=info,h2=info,rustls=info"),
        _ => return,
    };
    // A second init (impossible in this binary) would only keep the first.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(MaskedStderr { redactor })
        .with_target(true)
        .try_init();
}

struct MaskedStderr {
    redactor: Redactor,
}

impl<'a> MakeWriter<'a> for MaskedStderr {
    type Writer = MaskedLine;

    fn make_writer(&'a self) -> Self::Writer {
        MaskedLine {
            redactor: self.redactor.clone(),
            buffer: Vec::new(),
        }
    }
}

/// Buffers one log record and writes it masked when dropped, so a secret
/// split across two `write` calls is still caught.
struct MaskedLine {
    redactor: Redactor,
    buffer: Vec<u8>,
}

impl Write for MaskedLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for MaskedLine {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.buffer);
        let _ = std::io::stderr().write_all(self.redactor.redact(&text).as_bytes());
    }
}
