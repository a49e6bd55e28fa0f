//! A real S3-compatible server for tests: moto's server mode
//! (`pip install 'moto[server]'`, which `.ci/run` puts in `.ci/python`),
//! started on a free port and killed when dropped. Never an in-process
//! mock: the tests talk S3 over HTTP to it.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `moto_server`.
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    port: u16,
}

/// The `moto_server` program: `ESCOLA_MOTO_SERVER`, else the workspace's
/// `.ci/python/bin/moto_server`.
pub fn moto_program() -> PathBuf {
    std::env::var_os("ESCOLA_MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.ci/python/bin/moto_server")
        })
}

impl MotoServer {
    /// Starts moto on a free port with the extra environment `env` (for
    /// example `INITIAL_NO_AUTH_ACTION_COUNT=0`, which makes it check
    /// credentials), and waits until it answers (at most 30 s).
    pub fn start(env: &[(&str, &str)]) -> io::Result<MotoServer> {
        let program = moto_program();
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", program.display())))?;
        let server = MotoServer { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "moto did not listen on {port} within 30s"
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(server)
    }

    /// [`start`](MotoServer::start) for a test: `None` (the reason on
    /// stderr) when moto is not installed, unless
    /// `ESCOLA_REQUIRE_SERVICES=1`, when it panics.
    pub fn for_test(env: &[(&str, &str)]) -> Option<MotoServer> {
        match MotoServer::start(env) {
            Ok(s) => Some(s),
            Err(e) => {
                if std::env::var("ESCOLA_REQUIRE_SERVICES").as_deref() == Ok("1") {
                    panic!("moto_server is required (ESCOLA_REQUIRE_SERVICES=1): {e}");
                }
                eprintln!(
                    "skipping: no S3-compatible server ({e}); pip install 'moto[server]' into .ci/python or set ESCOLA_MOTO_SERVER"
                );
                None
            }
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The `AWS_*` variables that point a client at this server, with the
    /// secret key `secret`.
    pub fn aws_vars(&self, secret: &str) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", secret.to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Creates the bucket `name`.
    pub fn create_bucket(&self, name: &str) -> io::Result<()> {
        self.put(&format!("/{name}"), b"")
    }

    /// An unsigned `PUT path` (moto accepts it for a bucket unless told to
    /// check credentials); an error unless the answer is 200.
    fn put(&self, path: &str, body: &[u8]) -> io::Result<()> {
        let mut conn = TcpStream::connect(("127.0.0.1", self.port))?;
        write!(
            conn,
            "PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.port,
            body.len()
        )?;
        conn.write_all(body)?;
        let mut answer = String::new();
        conn.read_to_string(&mut answer)?;
        match answer.lines().next() {
            Some(status) if status.contains(" 200 ") => Ok(()),
            status => Err(io::Error::other(format!("PUT {path}: {status:?}"))),
        }
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
