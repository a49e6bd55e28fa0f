//! The web console through the binary: `serve` in one process, the run in
//! another, `approval-link` from a third; every refusal of an approval link
//! and of the viewer token answered with its status over HTTP (reqwest),
//! no secret of the run on any page, and a real browser (chromium through
//! chromedriver and WebDriver) approving a waiting run until it finishes.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod journals;

/// The secret a step uses: it must never be on a page.
const CANARY: &str = "PAGE-CANARY-7731";

fn runbook(approval: &str) -> String {
    format!(
        r#"name = "escola-restore"

[[metadata.approvers]]
name = "ana"
roles = ["dba"]

[[metadata.approvers]]
name = "bob"
roles = ["infra"]

[[metadata.approvers]]
name = "carla"
roles = ["dba"]

[[metadata.approvers]]
name = "dora"
roles = ["dba", "infra"]

[[phases]]
id = "prep"
title = "Preparar"

[[phases.steps]]
id = "uses-secret"
title = "Usa o token"
check = "command"
params = {{ program = "sh", args = ["-c", "echo token is $TOKEN"], secret_env = {{ TOKEN = "token" }} }}

[[phases]]
id = "rollback-db"
title = "Rollback do banco"

[[phases.steps]]
id = "restore-snapshot"
title = "Restaurar snapshot do banco (com aval de DBA)"
approval = {approval}

[[phases.steps]]
id = "verify"
title = "Verificar"
command = "echo restored"
"#
    )
}

struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    fn new(approval: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("runbook.toml"), runbook(approval)).unwrap();
        Dir { dir }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_escola-runbook"));
        c.current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env("CONSOLE_TEST_TOKEN", CANARY)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .args(args);
        c
    }

    fn output(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn run_args(extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = [
            "run",
            "--runbook",
            "runbook.toml",
            "--yes",
            "--operator",
            "ana",
            "--secret",
            "token=CONSOLE_TEST_TOKEN",
        ]
        .map(String::from)
        .to_vec();
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args
    }

    /// `run --no-wait` as ana: it stops at the approval (exit 5).
    fn stopped_at_approval(&self) {
        let args = Self::run_args(&["--no-wait"]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.output(&args);
        assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    }

    /// `run` as ana in the background: it waits for the approval.
    fn waiting_run(&self) -> Child {
        let args = Self::run_args(&[]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.cmd(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn runs(&self) -> PathBuf {
        self.dir.path().join(".escola-runbook/runs")
    }

    fn run_id(&self) -> String {
        let ids: Vec<String> = std::fs::read_dir(self.runs())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.path().join("journal.jsonl").is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(ids.len(), 1, "{ids:?}");
        ids[0].clone()
    }

    fn wait_for(&self, needle: &str) {
        journals::wait_for(&self.runs(), needle);
    }

    /// Runs `args`, which must be refused with exit 2 saying `needle`.
    fn refused(&self, args: &[&str], needle: &str) {
        let out = self.output(args);
        let said = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {said}");
        assert!(said.contains(needle), "{args:?}: {said}");
    }

    /// `resume` of the stopped run, which must end with exit `code`.
    fn resumed(&self, code: i32) {
        let out = self.output(&[
            "resume",
            "latest",
            "--runbook",
            "runbook.toml",
            "--yes",
            "--secret",
            "token=CONSOLE_TEST_TOKEN",
        ]);
        assert_eq!(out.status.code(), Some(code), "{}", text(&out.stderr));
    }

    /// The link `approval-link` prints for `approver` under `base`.
    fn link(&self, approver: &str, base: &str) -> String {
        let out = self.output(&[
            "approval-link",
            "latest",
            "restore-snapshot",
            "--for",
            approver,
            "--base-url",
            base,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        text(&out.stdout).trim().to_owned()
    }

    fn serve(&self, extra: &[&str]) -> Served {
        let mut child = self
            .cmd(&["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .trim_end_matches('/')
            .to_owned();
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut buf = [0; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Served { child, base, log }
    }
}

/// A run stopped at its approval (`run --no-wait`), the console serving
/// it, and carla's link to decide it.
fn stopped_with_link(approval: &str) -> (Dir, Served, String) {
    let d = Dir::new(approval);
    d.stopped_at_approval();
    let served = d.serve(&[]);
    let link = d.link("carla", &served.base);
    (d, served, link)
}

struct Served {
    child: Child,
    base: String,
    log: Arc<Mutex<String>>,
}

impl Served {
    /// Every page the console has for run `id`, the approval `link` last.
    fn pages(base: &str, id: &str, link: &str) -> Vec<String> {
        vec![
            format!("{base}/"),
            format!("{base}/live"),
            format!("{base}/runs/{id}"),
            format!("{base}/runs/{id}/live"),
            link.to_owned(),
        ]
    }

    /// What the console logged, once it has logged `needle`.
    fn logged(&self, needle: &str) -> String {
        let started = Instant::now();
        loop {
            let log = self.log.lock().unwrap().clone();
            if log.contains(needle) {
                return log;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the console never logged {needle:?}: {log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A link's parts: the path and its query fields.
fn parts(link: &str) -> (String, Vec<(String, String)>) {
    let (url, query) = link.split_once('?').unwrap();
    let fields = query
        .split('&')
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect();
    (url.to_owned(), fields)
}

fn with(fields: &[(String, String)], name: &str, value: Option<&str>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> =
        fields.iter().filter(|(k, _)| k != name).cloned().collect();
    if let Some(v) = value {
        out.push((name.to_owned(), v.to_owned()));
    }
    out
}

/// The hidden CSRF field of an approval page.
fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    page[at..].split('"').next().unwrap().to_owned()
}

/// GETs `link`'s page (which sets the CSRF cookie) and returns the form
/// fields to post back, with the CSRF token.
async fn open(client: &reqwest::Client, link: &str) -> (String, Vec<(String, String)>) {
    let page = client.get(link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let body = page.text().await.unwrap();
    let (url, fields) = parts(link);
    let fields = with(&fields, "csrf", Some(&csrf_of(&body)));
    (url, fields)
}

/// The body of a GET of `url`.
async fn fetched(client: &reqwest::Client, url: &str) -> String {
    client.get(url).send().await.unwrap().text().await.unwrap()
}

async fn post(client: &reqwest::Client, url: &str, fields: &[(String, String)]) -> (u16, String) {
    let answer = client.post(url).form(fields).send().await.unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

fn approve(fields: &[(String, String)]) -> Vec<(String, String)> {
    with(
        &with(fields, "verdict", Some("approve")),
        "comment",
        Some("conferido"),
    )
}

#[tokio::test]
async fn a_link_without_its_signature_or_with_a_bad_one_is_refused_403_and_logged_without_it() {
    let (d, served, link) = stopped_with_link(r#"{ role = "dba", deadline = "10m" }"#);
    let (url, fields) = parts(&link);
    let sig = fields.iter().find(|(k, _)| k == "sig").unwrap().1.clone();
    let client = client();
    let get = |fields: Vec<(String, String)>| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let answer = client.get(&url).query(&fields).send().await.unwrap();
            (answer.status().as_u16(), answer.text().await.unwrap())
        }
    };

    let (status, body) = get(with(&fields, "sig", None)).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("the link has no signature"), "{body}");
    // Every field is signed: another approver, a later expiry, a flipped
    // signature.
    let last = if sig.ends_with('0') { "1" } else { "0" };
    let flipped = format!("{}{last}", &sig[..sig.len() - 1]);
    for forged in [
        with(&fields, "for", Some("bob")),
        with(&fields, "exp", Some("4102444800")),
        with(&fields, "sig", Some(&flipped)),
    ] {
        let (status, body) = get(forged).await;
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("signature does not match"), "{body}");
    }
    // The same refusals when posting a decision, and nothing recorded.
    let (status, _) = post(&client, &url, &approve(&with(&fields, "sig", None))).await;
    assert_eq!(status, 403);
    let (status, _) = post(&client, &url, &approve(&with(&fields, "for", Some("bob")))).await;
    assert_eq!(status, 403);
    assert!(!d.runs().join(d.run_id()).join("decisions.jsonl").exists());

    let log = served.logged("signature does not match");
    assert!(log.contains("refused 403 GET /approve/"), "{log}");
    assert!(log.contains("the link has no signature"), "{log}");
    assert!(!log.contains(&sig), "the log shows no signature: {log}");
}

#[tokio::test]
async fn a_decision_without_its_csrf_token_or_with_a_wrong_one_is_refused_403() {
    let (d, served, link) = stopped_with_link(r#"{ role = "dba", deadline = "10m" }"#);
    let client = client();
    let (url, fields) = open(&client, &link).await;
    let token = fields.iter().find(|(k, _)| k == "csrf").unwrap().1.clone();

    let (status, body) = post(&client, &url, &approve(&with(&fields, "csrf", None))).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("without its CSRF token"), "{body}");
    let wrong = format!("{}{}", &token[..10], "0".repeat(token.len() - 10));
    let (status, body) = post(
        &client,
        &url,
        &approve(&with(&fields, "csrf", Some(&wrong))),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("CSRF token does not match"), "{body}");
    // The right token from another browser (without the page's cookie):
    // refused too.
    let (status, _) = post(&reqwest::Client::new(), &url, &approve(&fields)).await;
    assert_eq!(status, 403);
    assert!(!d.runs().join(d.run_id()).join("decisions.jsonl").exists());
    let log = served.logged("CSRF token does not match");
    assert!(!log.contains(&token), "{log}");

    // The page's own form goes through.
    let (status, body) = post(&client, &url, &approve(&fields)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("approved by carla"), "{body}");
}

#[tokio::test]
async fn a_used_link_is_gone_410() {
    let (d, served, link) = stopped_with_link(r#"{ role = "dba", deadline = "10m" }"#);
    let client = client();
    let (url, fields) = open(&client, &link).await;
    let (status, body) = post(&client, &url, &approve(&fields)).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(&client, &url, &approve(&fields)).await;
    assert_eq!(status, 410, "{body}");
    assert!(body.contains("already used"), "{body}");
    assert_eq!(client.get(&link).send().await.unwrap().status(), 410);
    let decisions =
        std::fs::read_to_string(d.runs().join(d.run_id()).join("decisions.jsonl")).unwrap();
    assert_eq!(decisions.lines().count(), 1, "{decisions}");
    assert!(
        decisions.contains("\"account\":\"approval link\""),
        "{decisions}"
    );
    served.logged("refused 410 POST");
}

#[tokio::test]
async fn a_rejection_through_a_link_needs_a_comment_and_fails_the_step() {
    let (d, served, link) = stopped_with_link(r#"{ role = "dba", deadline = "10m" }"#);
    let client = client();
    let (url, fields) = open(&client, &link).await;
    let reject = with(&fields, "verdict", Some("reject"));
    let (status, body) = post(&client, &url, &reject).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("a rejection needs a comment"), "{body}");
    let long = "x".repeat(5000);
    let (status, body) = post(&client, &url, &with(&reject, "comment", Some(&long))).await;
    assert_eq!(status, 400, "{body}");
    // Neither spent the link.
    let (status, body) = post(
        &client,
        &url,
        &with(&reject, "comment", Some("snapshot errado")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("rejected by carla"), "{body}");
    d.resumed(1);
    let report = std::fs::read_to_string(d.runs().join(d.run_id()).join("report.md")).unwrap();
    assert!(report.contains("rejected by carla"), "{report}");
    assert!(report.contains("snapshot errado"), "{report}");
    drop(served);
}

#[tokio::test]
async fn a_link_past_the_steps_deadline_is_gone_410() {
    let (d, served, link) =
        stopped_with_link(r#"{ role = "dba", deadline = "2s", on_deadline = "reject" }"#);
    let client = client();
    let (url, fields) = open(&client, &link).await;
    let (_, fields_exp) = parts(&link);
    let exp: i64 = fields_exp
        .iter()
        .find(|(k, _)| k == "exp")
        .unwrap()
        .1
        .parse()
        .unwrap();
    while chrono::Utc::now().timestamp() < exp {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = post(&client, &url, &approve(&fields)).await;
    assert_eq!(status, 410, "{body}");
    assert!(body.contains("expired"), "{body}");
    assert_eq!(client.get(&link).send().await.unwrap().status(), 410);
    // And no link is made for a deadline already past (the link's expiry
    // is the deadline rounded down to the second).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    d.refused(
        &[
            "approval-link",
            "latest",
            "restore-snapshot",
            "--for",
            "carla",
        ],
        "deadline",
    );
    served.logged("refused 410 POST");
}

#[tokio::test]
async fn a_decision_after_the_run_moved_on_is_a_conflict_409() {
    let (d, served, link) = stopped_with_link(r#"{ role = "dba", deadline = "10m" }"#);
    let client = client();
    let (url, fields) = open(&client, &link).await;
    // Carla approves from her shell, and the run goes on to its end.
    let out = d.output(&["approve", "latest", "restore-snapshot", "--as", "carla"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    d.resumed(0);
    let (status, body) = post(&client, &url, &approve(&fields)).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("the run moved on"), "{body}");
    assert_eq!(client.get(&link).send().await.unwrap().status(), 409);
    served.logged("refused 409 POST");
}

#[test]
fn a_link_is_made_only_for_an_approver_who_may_decide() {
    let d = Dir::new(r#"{ role = "dba", deadline = "10m" }"#);
    d.stopped_at_approval();
    for (who, said) in [
        ("ana", "is the operator of this run"),
        ("bob", "does not hold role `dba`"),
        ("dave", "is not an approver of this runbook"),
    ] {
        d.refused(
            &["approval-link", "latest", "restore-snapshot", "--for", who],
            said,
        );
    }
    d.refused(
        &["approval-link", "latest", "verify", "--for", "carla"],
        "is not waiting",
    );
    // Made under the key the run root keeps, private to its owner.
    let link = d.link("carla", "https://runbook.example.org/");
    assert!(
        link.starts_with("https://runbook.example.org/approve/"),
        "{link}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.runs().join("console.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn beyond_loopback_the_console_will_not_start_without_a_viewer_token() {
    let d = Dir::new(r#"{ role = "dba" }"#);
    d.refused(&["serve", "--listen", "0.0.0.0:0"], "give a viewer token");
    d.refused(
        &[
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--viewer-token-env",
            "CONSOLE_TEST_UNSET",
        ],
        "not set",
    );
}

#[tokio::test]
async fn every_page_needs_the_viewer_token_when_one_is_set() {
    let d = Dir::new(r#"{ role = "dba", deadline = "10m" }"#);
    d.stopped_at_approval();
    let served = d.serve(&["--viewer-token-env", "CONSOLE_TEST_TOKEN"]);
    let id = d.run_id();
    let link = d.link("carla", &served.base);
    let pages = Served::pages(&served.base, &id, &link);
    let plain = reqwest::Client::new();
    for page in &pages {
        let missing = plain.get(page).send().await.unwrap();
        assert_eq!(missing.status(), 401, "{page}");
        let wrong = plain
            .get(page)
            .bearer_auth("not-the-token")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401, "{page}");
        let right = plain.get(page).bearer_auth(CANARY).send().await.unwrap();
        assert_eq!(right.status(), 200, "{page}");
    }
    let (url, fields) = parts(&link);
    let (status, _) = post(&plain, &url, &approve(&fields)).await;
    assert_eq!(status, 401);
    // A browser gives it once in the address; a cookie carries it on.
    let browser = client();
    let first = browser
        .get(format!("{}/?viewer_token={CANARY}", served.base))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    let next = browser.get(&pages[2]).send().await.unwrap();
    assert_eq!(next.status(), 200);
    let log = served.logged("wrong viewer token");
    assert!(log.contains("no viewer token"), "{log}");
    assert!(!log.contains(CANARY), "{log}");
}

#[tokio::test]
async fn no_secret_of_the_run_is_on_any_page() {
    let d = Dir::new(r#"{ role = "dba", deadline = "10m" }"#);
    d.stopped_at_approval();
    let served = d.serve(&[]);
    let id = d.run_id();
    let client = client();
    let link = d.link("carla", &served.base);
    let mut pages = Served::pages(&served.base, &id, &link);
    let mut seen = String::new();
    for page in &pages {
        let answer = client.get(page).send().await.unwrap();
        assert_eq!(answer.status(), 200, "{page}");
        seen.push_str(&answer.text().await.unwrap());
    }
    let (url, fields) = open(&client, &link).await;
    let (status, body) = post(&client, &url, &approve(&fields)).await;
    assert_eq!(status, 200, "{body}");
    seen.push_str(&body);
    d.resumed(0);
    pages.truncate(4);
    for page in &pages {
        seen.push_str(&fetched(&client, page).await);
    }
    // The step did print it: the pages show it masked.
    assert!(seen.contains("token is &lt;redacted:token&gt;"), "{seen}");
    assert!(!seen.contains(CANARY), "a page shows the secret");
    assert!(!seen.contains("CANARY"), "a page shows part of the secret");
    let key = std::fs::read_to_string(d.runs().join("console.key")).unwrap();
    assert!(!seen.contains(key.trim()), "a page shows the signing key");
}

#[tokio::test]
async fn the_run_page_follows_the_run_live() {
    let d = Dir::new(r#"{ role = "dba", deadline = "10m" }"#);
    let mut run = d.waiting_run();
    d.wait_for("approval_requested");
    let served = d.serve(&[]);
    let id = d.run_id();
    let client = client();
    let page = client
        .get(format!("{}/runs/{id}", served.base))
        .send()
        .await
        .unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = page.text().await.unwrap();
    assert!(
        body.contains(&format!("data-src=\"/runs/{id}/live\"")),
        "{body}"
    );
    assert!(csp.contains("script-src 'nonce-"), "{csp}");
    let live = format!("{}/runs/{id}/live", served.base);
    let now = fetched(&client, &live).await;
    assert!(now.contains("waiting for approval"), "{now}");
    assert!(now.contains("Pending approvals"), "{now}");
    assert!(now.contains("approval by role dba: carla, dora"), "{now}");
    let out = d.output(&["approve", "latest", "restore-snapshot", "--as", "carla"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(run.wait().unwrap().code(), Some(0));
    let then = fetched(&client, &live).await;
    assert!(then.contains("class=\"banner ok\""), "{then}");
    assert!(then.contains("approved by carla"), "{then}");
    assert!(!then.contains("Pending approvals"), "{then}");
}

/// A webhook answering 200 to every post; the bodies it was posted.
fn webhook() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let sink = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            sink.lock().unwrap().push(text(&body));
            let _ = std::io::Write::write_all(
                &mut stream,
                b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
            );
        }
    });
    (format!("http://{addr}/hooks/console-test"), bodies)
}

#[tokio::test]
async fn with_a_public_url_the_approval_notice_carries_a_link_per_approver() {
    let d = Dir::new(r#"{ role = "dba", deadline = "10m" }"#);
    let served = d.serve(&["--public-url", "https://runbook.example.org/"]);
    let (hook, bodies) = webhook();
    let args = Dir::run_args(&["--no-wait", "--secret", "webhook_url=CONSOLE_TEST_HOOK"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = d
        .cmd(&args)
        .env("CONSOLE_TEST_HOOK", &hook)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    let posted = bodies.lock().unwrap().clone();
    let asked = posted
        .iter()
        .find(|b| b.contains("waits for approval"))
        .unwrap_or_else(|| panic!("no approval message in {posted:?}"));
    let message: serde_json::Value = serde_json::from_str(asked).unwrap();
    let message = message["text"].as_str().unwrap();
    let links: Vec<(&str, &str)> = message
        .lines()
        .filter_map(|l| l.split_once(": https://"))
        .collect();
    // One per approver holding the role, the operator (ana) left out.
    let names: Vec<&str> = links.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["carla", "dora"], "{message}");
    // Each opens its approver's page in the console.
    let client = client();
    for (name, rest) in &links {
        let url = format!("https://{rest}").replace("https://runbook.example.org", &served.base);
        let page = client.get(&url).send().await.unwrap();
        assert_eq!(page.status(), 200, "{url}");
        assert!(
            page.text()
                .await
                .unwrap()
                .contains(&format!("Approval asked of {name}"))
        );
    }
    // The journal keeps the message, its signatures masked.
    let journal = std::fs::read_to_string(d.runs().join(d.run_id()).join("journal.jsonl")).unwrap();
    assert!(
        journal.contains("sig=<redacted:approval link>"),
        "{journal}"
    );
    for (_, rest) in &links {
        let sig = rest.rsplit("sig=").next().unwrap();
        assert_eq!(sig.len(), 64);
        assert!(
            !journal.contains(sig),
            "the journal holds a link's signature"
        );
    }
}

/// The chromedriver binary, or why the browser test cannot run (it then
/// skips, or fails under `ESCOLA_REQUIRE_SERVICES=1`).
fn chromedriver() -> Option<&'static str> {
    let found = Command::new("chromedriver")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some("chromedriver");
    }
    let reason = "no chromedriver on PATH (apt-get install -y chromium chromium-driver)";
    if std::env::var("ESCOLA_REQUIRE_SERVICES").as_deref() == Ok("1") {
        panic!("ESCOLA_REQUIRE_SERVICES=1 but {reason}");
    }
    eprintln!("browser test skipped: {reason}");
    None
}

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts chromedriver on a free port and waits until it answers.
async fn start_driver(program: &str) -> (Driver, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(program)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while reqwest::get(format!("{url}/status")).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "chromedriver never answered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (Driver(child), url)
}

#[tokio::test]
async fn a_browser_opens_the_approval_link_approves_and_sees_the_run_finish() {
    let Some(program) = chromedriver() else {
        return;
    };
    use fantoccini::{ClientBuilder, Locator};
    let d = Dir::new(r#"{ role = "dba", deadline = "10m" }"#);
    let mut run = d.waiting_run();
    d.wait_for("approval_requested");
    let served = d.serve(&[]);
    let link = d.link("carla", &served.base);
    let (_driver, url) = start_driver(program).await;
    let profile = tempfile::tempdir().unwrap();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                format!("--user-data-dir={}", profile.path().display())
            ]
        }),
    );
    let browser = ClientBuilder::rustls()
        .unwrap()
        .capabilities(caps)
        .connect(&url)
        .await
        .unwrap();
    let run_page = format!("{}/runs/{}", served.base, d.run_id());
    let result = async {
        // The run's page, left open while the approver decides elsewhere.
        browser.goto(&run_page).await?;
        let watching = browser.window().await?;
        let page = browser.source().await?;
        assert!(
            page.contains("<div class=\"big\">waiting for approval</div>"),
            "{page}"
        );
        let other = browser.new_window(true).await?;
        browser.switch_to_window(other.handle).await?;
        browser.goto(&link).await?;
        let heading = browser
            .wait()
            .for_element(Locator::Css("h1"))
            .await?
            .text()
            .await?;
        assert_eq!(heading, "Approval asked of carla");
        let page = browser.source().await?;
        assert!(page.contains("Restaurar snapshot do banco"), "{page}");
        assert!(
            page.contains("token is &lt;redacted:token&gt;"),
            "the evidence so far"
        );
        browser
            .find(Locator::Id("comment"))
            .await?
            .send_keys("snapshot conferido")
            .await?;
        browser.find(Locator::Id("approve")).await?.click().await?;
        let said = browser
            .wait()
            .for_element(Locator::Id("message"))
            .await?
            .text()
            .await?;
        assert!(said.contains("approved by carla"), "{said}");
        // The run takes the decision and finishes; its page, left open,
        // shows it without a reload.
        browser.switch_to_window(watching).await?;
        let status = run.wait().expect("the run ends");
        assert_eq!(status.code(), Some(0));
        let started = Instant::now();
        let page = loop {
            // The live part is replaced every 2 s: read the whole page
            // rather than hold an element the script may swap away.
            let page = browser.source().await?;
            if page.contains("<div class=\"big\">succeeded</div>") {
                break page;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the page never said succeeded: {page}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        assert!(
            page.contains("approved by carla at") && page.contains("snapshot conferido"),
            "{page}"
        );
        Ok::<_, fantoccini::error::CmdError>(())
    }
    .await;
    let _ = browser.close().await;
    result.unwrap();
    let report = std::fs::read_to_string(d.runs().join(d.run_id()).join("report.md")).unwrap();
    assert!(report.contains("approved by carla"), "{report}");
}
