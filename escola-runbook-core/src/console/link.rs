//! Approval links: one approver, one run, one step, signed with HMAC-SHA256
//! under a key kept in the run root (`console.key`, mode 0600, created on
//! first use, never shown), expiring at the step's deadline and spent by
//! the first decision taken through them.
//!
//! A link carries its fields in the clear (`for`, `exp`, `n`) and their
//! signature (`sig`); the server recomputes the signature, so a changed
//! field is a bad signature. The form a link's page shows carries a CSRF
//! token bound to the link and to a cookie the page set.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use sha2::Sha256;

use crate::approval::ApprovalRequest;
use crate::decisions::{Refusal, check_decision};
use crate::record::RunRecord;

type HmacSha256 = hmac::Hmac<Sha256>;

/// The key's file name in the run root.
pub const KEY_FILE: &str = "console.key";

/// The file in a run's directory listing the links already spent (their
/// nonces, never their signatures).
pub const USED_FILE: &str = "used-links.txt";

/// The file in the run root naming the console's public address, written
/// by a console given one: links made elsewhere (the `approval-link`
/// command, a run's notifications) point there.
pub const PUBLIC_URL_FILE: &str = "console-url.txt";

/// How long a link lives when its step waits without a deadline.
pub const UNBOUNDED_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

const KEY_BYTES: usize = 32;

/// Why the key or the spent-links file could not be used, or a link could
/// not be issued.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// A file could not be read or written.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The key file is not what this program writes.
    #[error("the console key {} is not {KEY_BYTES} bytes in hex; remove it and a new one is made (links issued under it stop working)", path.display())]
    BadKey {
        /// The file.
        path: PathBuf,
    },
    /// Others than its owner may read the key file.
    #[error("the console key {} may be read by others (mode {mode:o}); make it 0600", path.display())]
    KeyExposed {
        /// The file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// The system gave no randomness.
    #[error("no randomness for a key or a nonce: {0}")]
    Random(String),
    /// The approver may not decide the step now.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The step's deadline has passed.
    #[error(
        "the deadline of step `{step}` passed at {}; a link would be born expired",
        crate::outcome::format_timestamp(at)
    )]
    DeadlinePassed {
        /// The step.
        step: String,
        /// Its deadline.
        at: DateTime<Utc>,
    },
}

/// The run root's signing key. Never printed: its `Debug` shows no byte.
pub struct LinkKey {
    key: Vec<u8>,
}

impl std::fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkKey(..)")
    }
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> LinkError {
    let path = path.to_owned();
    move |source| LinkError::Io {
        action,
        path,
        source,
    }
}

/// `n` random bytes.
pub(crate) fn random_bytes(n: usize) -> Result<Vec<u8>, LinkError> {
    let mut bytes = vec![0; n];
    getrandom::fill(&mut bytes).map_err(|e| LinkError::Random(e.to_string()))?;
    Ok(bytes)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

impl LinkKey {
    /// The key of run root `root`, created (0600) if there is none yet.
    pub fn load_or_create(root: &Path) -> Result<Self, LinkError> {
        let path = root.join(KEY_FILE);
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        std::fs::create_dir_all(root).map_err(io("create", root))?;
        match options.open(&path) {
            Ok(mut file) => {
                let key = random_bytes(KEY_BYTES)?;
                file.write_all(hex(&key).as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(io("write", &path))?;
                Ok(LinkKey { key })
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::load(&path),
            Err(e) => Err(io("create", &path)(e)),
        }
    }

    fn load(path: &Path) -> Result<Self, LinkError> {
        let mut file = std::fs::File::open(path).map_err(io("read", path))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = file
                .metadata()
                .map_err(io("read", path))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(LinkError::KeyExposed {
                    path: path.to_owned(),
                    mode: mode & 0o777,
                });
            }
        }
        let mut text = String::new();
        file.read_to_string(&mut text).map_err(io("read", path))?;
        match unhex(text.trim()) {
            Some(key) if key.len() == KEY_BYTES => Ok(LinkKey { key }),
            _ => Err(LinkError::BadKey {
                path: path.to_owned(),
            }),
        }
    }

    /// The MAC of `parts`, each ended by a newline so no two lists of
    /// parts read alike.
    fn mac<S: AsRef<str>>(&self, domain: &str, parts: &[S]) -> HmacSha256 {
        // HMAC takes a key of any length: this cannot fail.
        let mut mac = match HmacSha256::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts every key length"),
        };
        for part in std::iter::once(domain).chain(parts.iter().map(AsRef::as_ref)) {
            mac.update(part.as_bytes());
            mac.update(b"\n");
        }
        mac
    }

    /// The signature of `link`, in hex.
    pub fn sign(&self, link: &ApprovalLink) -> String {
        hex(&self.mac("link", &link.fields()).finalize().into_bytes())
    }

    /// Whether `signature` (hex) is `link`'s, compared in constant time.
    pub fn verify(&self, link: &ApprovalLink, signature: &str) -> bool {
        unhex(signature)
            .is_some_and(|sig| self.mac("link", &link.fields()).verify_slice(&sig).is_ok())
    }

    /// The CSRF token of `link`'s form in the browser holding `cookie`.
    pub fn csrf(&self, link: &ApprovalLink, cookie: &str) -> String {
        hex(&self
            .mac("csrf", &[&link.nonce, cookie])
            .finalize()
            .into_bytes())
    }

    /// Whether `token` is the CSRF token of `link` for `cookie`, compared
    /// in constant time.
    pub fn verify_csrf(&self, link: &ApprovalLink, cookie: &str, token: &str) -> bool {
        unhex(token).is_some_and(|t| {
            self.mac("csrf", &[&link.nonce, cookie])
                .verify_slice(&t)
                .is_ok()
        })
    }
}

/// What a link grants: `approver` may decide `step` of run `run_id` until
/// `expires`, once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalLink {
    /// The run.
    pub run_id: String,
    /// The step.
    pub step: String,
    /// The one approver it is for.
    pub approver: String,
    /// When it stops working (the step's deadline), in whole seconds.
    pub expires: DateTime<Utc>,
    /// What makes it one link among others for the same approver and step
    /// (hex); spent links are listed by it.
    pub nonce: String,
}

impl ApprovalLink {
    /// A link for `approver` to decide `step` of the run in `record`, if
    /// they may decide it now: expiring at the step's deadline (or
    /// [`UNBOUNDED_LIFETIME`] after the wait began without one).
    pub fn issue(
        record: &RunRecord,
        step: &str,
        approver: &str,
        now: DateTime<Utc>,
    ) -> Result<Self, LinkError> {
        let request = check_decision(record, step, approver)?;
        Self::for_request(&record.run.run_id, step, approver, request, now)
    }

    /// A link for `approver` to decide `step` of run `run_id`, which waits
    /// on `request` (whoever calls this has asked the eligibility rule, as
    /// the run did when it listed `request.approvers`).
    pub fn for_request(
        run_id: &str,
        step: &str,
        approver: &str,
        request: &ApprovalRequest,
        now: DateTime<Utc>,
    ) -> Result<Self, LinkError> {
        let expires = match request.deadline {
            Some(at) if at <= now => {
                return Err(LinkError::DeadlinePassed {
                    step: step.to_owned(),
                    at,
                });
            }
            Some(at) => at,
            None => request.since.max(now) + UNBOUNDED_LIFETIME,
        };
        Ok(ApprovalLink {
            run_id: run_id.to_owned(),
            step: step.to_owned(),
            approver: approver.to_owned(),
            expires: DateTime::from_timestamp(expires.timestamp(), 0).unwrap_or(expires),
            nonce: hex(&random_bytes(16)?),
        })
    }

    fn fields(&self) -> [String; 5] {
        [
            self.run_id.clone(),
            self.step.clone(),
            self.approver.clone(),
            self.expires.timestamp().to_string(),
            self.nonce.clone(),
        ]
    }

    /// The link's path and query under the console, signed with `key`.
    pub fn path(&self, key: &LinkKey) -> String {
        format!(
            "/approve/{}/{}?for={}&exp={}&n={}&sig={}",
            encode(&self.run_id),
            encode(&self.step),
            encode(&self.approver),
            self.expires.timestamp(),
            self.nonce,
            key.sign(self)
        )
    }

    /// The whole link under the console at `base_url`.
    pub fn url(&self, base_url: &str, key: &LinkKey) -> String {
        format!("{}{}", base_url.trim_end_matches('/'), self.path(key))
    }

    /// Whether it has expired at `now`.
    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        now >= self.expires
    }
}

/// Percent-encodes everything but unreserved characters.
pub(crate) fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Records `url` as the console's public address for the run root `root`.
pub fn record_public_url(root: &Path, url: &str) -> Result<(), LinkError> {
    let path = root.join(PUBLIC_URL_FILE);
    let tmp = root.join(format!(".{PUBLIC_URL_FILE}.tmp"));
    std::fs::create_dir_all(root)
        .and_then(|()| std::fs::write(&tmp, format!("{url}\n")))
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(io("write", &path))
}

/// The console's public address recorded for the run root `root`, if a
/// console recorded one.
pub fn public_url(root: &Path) -> Option<String> {
    std::fs::read_to_string(root.join(PUBLIC_URL_FILE))
        .ok()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// Whether the link with `nonce` was spent, per run directory `run_dir`.
pub fn is_used(run_dir: &Path, nonce: &str) -> Result<bool, LinkError> {
    let path = run_dir.join(USED_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text.lines().any(|l| l == nonce)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io("read", &path)(e)),
    }
}

/// Lists the link with `nonce` as spent (one line, one append).
pub fn mark_used(run_dir: &Path, nonce: &str) -> Result<(), LinkError> {
    let path = run_dir.join(USED_FILE);
    let mut options = OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&path).map_err(io("append to", &path))?;
    file.write_all(format!("{nonce}\n").as_bytes())
        .and_then(|()| file.sync_data())
        .map_err(io("append to", &path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link() -> ApprovalLink {
        ApprovalLink {
            run_id: "20261202T200553Z-fccc".into(),
            step: "restore-snapshot".into(),
            approver: "carla".into(),
            expires: "2026-12-02T20:35:53Z".parse().unwrap(),
            nonce: "00ff".into(),
        }
    }

    #[test]
    fn a_signature_covers_every_field_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = LinkKey::load_or_create(dir.path()).unwrap();
        let sig = key.sign(&link());
        assert!(key.verify(&link(), &sig));
        let changed = [
            ApprovalLink {
                approver: "bob".into(),
                ..link()
            },
            ApprovalLink {
                step: "verify".into(),
                ..link()
            },
            ApprovalLink {
                expires: link().expires + chrono::Duration::seconds(1),
                ..link()
            },
            ApprovalLink {
                nonce: "00fe".into(),
                ..link()
            },
        ];
        for other in changed {
            assert!(!key.verify(&other, &sig), "{other:?}");
        }
        assert!(!key.verify(&link(), "zz"));
        assert!(!key.verify(&link(), ""));
        let other_root = tempfile::tempdir().unwrap();
        let other = LinkKey::load_or_create(other_root.path()).unwrap();
        assert!(!other.verify(&link(), &sig));
    }

    #[test]
    fn the_key_is_made_once_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let first = LinkKey::load_or_create(dir.path()).unwrap();
        let again = LinkKey::load_or_create(dir.path()).unwrap();
        assert_eq!(first.sign(&link()), again.sign(&link()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let path = dir.path().join(KEY_FILE);
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(
                LinkKey::load_or_create(dir.path()),
                Err(LinkError::KeyExposed { .. })
            ));
        }
        assert_eq!(format!("{first:?}"), "LinkKey(..)");
    }

    #[test]
    fn a_spent_link_stays_spent() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_used(dir.path(), "00ff").unwrap());
        mark_used(dir.path(), "00ff").unwrap();
        assert!(is_used(dir.path(), "00ff").unwrap());
        assert!(!is_used(dir.path(), "00f").unwrap());
    }
}
