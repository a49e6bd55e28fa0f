//! Encryption at rest of snapshot files with age (X25519): the recipients a
//! snapshot is encrypted to (public keys, recorded in the manifest), the
//! identities that decrypt it (secret keys, read from a file the user
//! keeps, never shown), and the streaming writer and reader. The files are
//! standard age files: `age -d -i key.txt FILE | zstd -dc` reads them.

use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use age::x25519;

/// The suffix of an encrypted file (after `.sql.zst`).
pub const SEALED_SUFFIX: &str = ".age";

/// Why a recipient or identity was refused, or a file did not decrypt.
/// No variant carries the text of an identity.
#[derive(Debug, thiserror::Error)]
pub enum CryptError {
    /// Not an age X25519 public key.
    #[error(
        "`{recipient}` is not an age X25519 recipient (a public key age1..., as age-keygen prints)"
    )]
    BadRecipient {
        /// The text given (a public key: safe to show).
        recipient: String,
    },
    /// A recipients file has a line that is not a recipient.
    #[error("{}, line {line}: `{recipient}` is not an age X25519 recipient (one public key age1... per line, # for comments)", path.display())]
    BadRecipientLine {
        /// The recipients file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The line's text.
        recipient: String,
    },
    /// A recipients file names no recipient.
    #[error("{}: names no recipient (one public key age1... per line)", path.display())]
    NoRecipients {
        /// The recipients file.
        path: PathBuf,
    },
    /// An identity file has a line that is not an identity (its text is
    /// not shown: it may be a secret).
    #[error("{}, line {line}: not an age X25519 identity (AGE-SECRET-KEY-1..., as age-keygen writes)", path.display())]
    BadIdentityLine {
        /// The identity file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
    /// An identity file holds no identity.
    #[error("{}: holds no age identity (AGE-SECRET-KEY-1..., as age-keygen writes)", path.display())]
    NoIdentities {
        /// The identity file.
        path: PathBuf,
    },
    /// An identity file others can read: the key is refused rather than
    /// used from a file that has already leaked it to them.
    #[error("{}: the identity file is readable by group or others (mode {mode:o}); make it private (chmod 600) and keep it so", path.display())]
    IdentityExposed {
        /// The identity file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// None of the identities opens the file.
    #[error("{}: none of the identities in {} can decrypt it (the snapshot is encrypted to {recipients}); give the identity of one of those recipients", file.display(), identity.display())]
    WrongIdentity {
        /// The encrypted file.
        file: PathBuf,
        /// The identity file tried.
        identity: PathBuf,
        /// The snapshot's recipients, comma-separated.
        recipients: String,
    },
    /// The file is not an age file, or its ciphertext is damaged.
    #[error("{}: cannot decrypt: {message}", file.display())]
    Undecryptable {
        /// The encrypted file.
        file: PathBuf,
        /// age's message.
        message: String,
    },
    /// A recipients or identity file cannot be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

/// An age X25519 recipient (`age1...`): a public key, safe to show.
#[derive(Clone)]
pub struct Recipient {
    text: String,
    key: x25519::Recipient,
}

impl Recipient {
    /// The public key as written (`age1...`).
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq for Recipient {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Recipient {}

impl FromStr for Recipient {
    type Err = CryptError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        let key = x25519::Recipient::from_str(text).map_err(|_| CryptError::BadRecipient {
            recipient: text.to_owned(),
        })?;
        Ok(Recipient {
            text: key.to_string(),
            key,
        })
    }
}

/// The recipients of a recipients file: one per line, blank lines and
/// `#` comments skipped (the format of `age -R`).
pub fn read_recipients(path: &Path) -> Result<Vec<Recipient>, CryptError> {
    let text = fs::read_to_string(path).map_err(|source| CryptError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut out = Vec::new();
    for (line, recipient) in meaningful_lines(&text) {
        out.push(
            Recipient::from_str(recipient).map_err(|_| CryptError::BadRecipientLine {
                path: path.to_owned(),
                line,
                recipient: recipient.to_owned(),
            })?,
        );
    }
    if out.is_empty() {
        return Err(CryptError::NoRecipients {
            path: path.to_owned(),
        });
    }
    Ok(out)
}

/// `(1-based number, trimmed text)` of the lines that are neither blank nor
/// a `#` comment.
fn meaningful_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
}

/// The identities of an identity file (as `age-keygen` writes it), with
/// the file's path for messages. Debug shows the path only.
#[derive(Clone)]
pub struct Identities {
    path: PathBuf,
    keys: Arc<[x25519::Identity]>,
}

impl fmt::Debug for Identities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identities({})", self.path.display())
    }
}

impl Identities {
    /// Reads the identity file at `path`; refuses one readable by group or
    /// others.
    pub fn read(path: &Path) -> Result<Self, CryptError> {
        let io = |source| CryptError::Io {
            path: path.to_owned(),
            source,
        };
        let mode = fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(CryptError::IdentityExposed {
                path: path.to_owned(),
                mode,
            });
        }
        let text = fs::read_to_string(path).map_err(io)?;
        let mut keys = Vec::new();
        for (line, key) in meaningful_lines(&text) {
            keys.push(x25519::Identity::from_str(key).map_err(|_| {
                CryptError::BadIdentityLine {
                    path: path.to_owned(),
                    line,
                }
            })?);
        }
        if keys.is_empty() {
            return Err(CryptError::NoIdentities {
                path: path.to_owned(),
            });
        }
        Ok(Identities {
            path: path.to_owned(),
            keys: keys.into(),
        })
    }

    /// A reader of the plaintext of the age file `input` (at `file`, for
    /// messages); `recipients` names who it is encrypted to when no
    /// identity matches.
    pub fn open<R: Read>(
        &self,
        input: R,
        file: &Path,
        recipients: &[String],
    ) -> Result<age::stream::StreamReader<R>, CryptError> {
        let undecryptable = |e: age::DecryptError| CryptError::Undecryptable {
            file: file.to_owned(),
            message: e.to_string(),
        };
        let decryptor = age::Decryptor::new(input).map_err(undecryptable)?;
        decryptor
            .decrypt(self.keys.iter().map(|k| k as &dyn age::Identity))
            .map_err(|e| match e {
                age::DecryptError::NoMatchingKeys => CryptError::WrongIdentity {
                    file: file.to_owned(),
                    identity: self.path.clone(),
                    recipients: recipients.join(", "),
                },
                other => undecryptable(other),
            })
    }
}

/// An age encryptor to `recipients` (at least one).
pub(crate) fn encryptor(recipients: &[Recipient]) -> io::Result<age::Encryptor> {
    age::Encryptor::with_recipients(recipients.iter().map(|r| &r.key as &dyn age::Recipient))
        .map_err(|e| io::Error::other(e.to_string()))
}

/// The zstd stream of the snapshot file `input` (at `path`, for
/// messages): decrypted with `identities` when given (the caller knows the
/// file is sealed).
pub(crate) fn open_stream(
    input: Box<dyn Read + Send>,
    path: &Path,
    identities: Option<&Identities>,
    recipients: &[String],
) -> Result<Box<dyn Read + Send>, CryptError> {
    Ok(match identities {
        Some(ids) => Box::new(ids.open(
            io::BufReader::with_capacity(1 << 16, input),
            path,
            recipients,
        )?),
        None => input,
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use age::secrecy::ExposeSecret;

    #[test]
    fn recipients_parse_and_bad_ones_are_named() {
        let id = x25519::Identity::generate();
        let public = id.to_public().to_string();
        let r: Recipient = format!(" {public} ").parse().unwrap();
        assert_eq!(r.as_str(), public);
        let err = "age1nope".parse::<Recipient>().unwrap_err();
        assert!(err.to_string().contains("`age1nope`"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("recipients.txt");
        fs::write(&file, format!("# team\n\n{public}\n")).unwrap();
        assert_eq!(read_recipients(&file).unwrap(), [r]);
        fs::write(&file, format!("{public}\nage1bad\n")).unwrap();
        let err = read_recipients(&file).unwrap_err().to_string();
        assert!(err.contains("line 2: `age1bad`"), "{err}");
        fs::write(&file, "# nobody\n").unwrap();
        assert!(matches!(
            read_recipients(&file),
            Err(CryptError::NoRecipients { .. })
        ));
    }

    #[test]
    fn identities_are_private_and_never_shown() {
        let id = x25519::Identity::generate();
        let secret = id.to_string().expose_secret().to_owned();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key.txt");
        fs::write(&file, format!("# created: now\n{secret}\n")).unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        let err = Identities::read(&file).unwrap_err();
        assert!(matches!(
            err,
            CryptError::IdentityExposed { mode: 0o644, .. }
        ));
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
        let ids = Identities::read(&file).unwrap();
        assert!(!format!("{ids:?}").contains("AGE-SECRET"));

        // A round trip, and a bad line named without its text.
        let to: Recipient = id.to_public().to_string().parse().unwrap();
        let mut sealed = encryptor(&[to]).unwrap().wrap_output(Vec::new()).unwrap();
        sealed.write_all(b"zstd bytes").unwrap();
        let bytes = sealed.finish().unwrap();
        let mut plain = Vec::new();
        ids.open(bytes.as_slice(), &file, &[])
            .unwrap()
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, b"zstd bytes");
        let other = dir.path().join("other.txt");
        fs::write(
            &other,
            format!(
                "{}\n",
                x25519::Identity::generate().to_string().expose_secret()
            ),
        )
        .unwrap();
        fs::set_permissions(&other, fs::Permissions::from_mode(0o600)).unwrap();
        let wrong =
            Identities::read(&other)
                .unwrap()
                .open(bytes.as_slice(), &file, &["age1x".into()]);
        assert!(matches!(wrong, Err(CryptError::WrongIdentity { .. })));
        fs::write(&other, format!("{secret}x\n")).unwrap();
        let err = Identities::read(&other).unwrap_err().to_string();
        assert!(err.contains("line 1") && !err.contains(&secret), "{err}");
    }
}
