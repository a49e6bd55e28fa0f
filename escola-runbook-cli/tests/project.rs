//! The project file as a team uses it: one `escola-runbook.toml` whose
//! `staging` environment points at the API (the simulator) and at a release
//! checkout, so `plan` shows the readiness checks automated and a dry-run
//! runs them with their evidence.

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn bin(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_escola-runbook"));
    c.env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .current_dir(dir)
        .stdin(Stdio::null());
    c
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.invalid")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.invalid")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A Clover report of `covered` statements out of 100.
fn clover(covered: u32) -> String {
    format!(
        r#"<coverage generated="1764383400"><project><metrics statements="100" coveredstatements="{covered}"/></project></coverage>"#
    )
}

const DOCS: [&str; 3] = [
    "docs/api.md",
    "docs/cache-strategy.md",
    "docs/escola-module-todo.md",
];

/// A release checkout: tagged v2.3.0, then the three docs, the changelog
/// of 2.4.0 and a Clover report committed after the tag; an app log with
/// no errors.
fn release_checkout(dir: &Path) {
    git(dir, &["init", "-q", "-b", "main"]);
    std::fs::create_dir_all(dir.join("docs")).unwrap();
    std::fs::create_dir_all(dir.join("build/logs")).unwrap();
    std::fs::create_dir_all(dir.join("var/logs")).unwrap();
    for doc in DOCS {
        std::fs::write(dir.join(doc), "v1\n").unwrap();
    }
    std::fs::write(
        dir.join("CHANGELOG.md"),
        "# Changelog\n\n## [2.3.0]\n- first\n",
    )
    .unwrap();
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "-m", "2.3.0"]);
    git(dir, &["tag", "v2.3.0"]);
    for doc in DOCS {
        std::fs::write(dir.join(doc), "v2\n").unwrap();
    }
    std::fs::write(
        dir.join("CHANGELOG.md"),
        "# Changelog\n\n## [2.4.0]\n- second\n\n## [2.3.0]\n- first\n",
    )
    .unwrap();
    std::fs::write(dir.join("build/logs/clover.xml"), clover(90)).unwrap();
    // A log that began before the scan's window, with no errors in it.
    let at = |ago: &str| {
        let out = Command::new("date")
            .args(["-u", "-d", ago, "+%Y-%m-%dT%H:%M:%S+00:00"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    std::fs::write(
        dir.join("var/logs/app.log"),
        format!(
            "[{}] app.INFO: release 2.3.0 serving\n[{}] app.INFO: release 2.4.0 serving\n",
            at("-1 hour"),
            at("now")
        ),
    )
    .unwrap();
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "-m", "2.4.0"]);
}

fn project_file(base_url: &str) -> String {
    format!(
        r#"runbook = "builtin"

[environments.staging]
base_url = "{base_url}"
app_dir = "."
release_dir = "."

[environments.staging.coverage]
report = "build/logs/clover.xml"
min = 85

[environments.staging.docs]
files = ["docs/api.md", "docs/cache-strategy.md", "docs/escola-module-todo.md"]
since = "ref:v2.3.0"

[environments.staging.changelog]
version = "2.4.0"

[environments.staging.app_log]
file = "var/logs/app.log"
since = "30m"

[environments.production]
base_url = "https://api.escola.invalid"
"#
    )
}

const AUTOMATED: [&str; 5] = [
    "coverage",
    "docs-updated",
    "changelog-version",
    "app-log-errors",
    "smoke-tests",
];

#[test]
fn a_staging_environment_automates_the_readiness_checks_and_fails_on_low_coverage() {
    let sim = escola_runbook_testkit::BackgroundSimulator::start(
        escola_runbook_testkit::SimulatorConfig::default(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    release_checkout(dir.path());
    std::fs::write(
        dir.path().join("escola-runbook.toml"),
        project_file(&sim.base_url()),
    )
    .unwrap();

    let plan = bin(dir.path())
        .args(["plan", "--env", "staging", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let step = |id: &str| {
        plan["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step"] == id)
            .unwrap_or_else(|| panic!("no step {id}"))
            .clone()
    };
    for id in AUTOMATED {
        assert_eq!(step(id)["automation"], "automated", "{id}: {}", step(id));
    }
    // What stays manual says which key would automate it.
    let cdn = step("cdn-purge");
    assert_eq!(cdn["automation"], "manual");
    assert_eq!(cdn["automatable_by"], serde_json::json!(["cdn_purge"]));
    assert_eq!(
        step("ci-green")["automatable_by"],
        serde_json::json!(["ci_status", "coverage"])
    );
    assert!(step("squad-present").get("automatable_by").is_none());

    let run = bin(dir.path())
        .args(["run", "--env", "staging", "--dry-run", "--yes"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    let journal = journal_of(dir.path());
    std::fs::remove_dir_all(dir.path().join(".escola-runbook")).unwrap();
    for id in AUTOMATED {
        let finished = journal
            .iter()
            .find(|e| e["step"] == id && e["outcome"].is_object())
            .unwrap_or_else(|| panic!("{id} has no outcome in the journal"));
        assert_eq!(finished["outcome"]["status"], "passed", "{id}: {finished}");
    }
    let coverage = journal
        .iter()
        .find(|e| e["step"] == "coverage" && e["outcome"].is_object())
        .unwrap();
    assert!(
        coverage["outcome"]["summary"]
            .as_str()
            .unwrap()
            .contains("90"),
        "{coverage}"
    );

    // --set overrides the file: the smoke tests aim at a closed port.
    let elsewhere = bin(dir.path())
        .args([
            "run",
            "--env",
            "staging",
            "--dry-run",
            "--yes",
            "--only",
            "smoke-tests",
        ])
        .args(["--set", "base_url=http://127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(elsewhere.status.code(), Some(1), "{}", text(&elsewhere));
    std::fs::remove_dir_all(dir.path().join(".escola-runbook")).unwrap();

    std::fs::write(dir.path().join("build/logs/clover.xml"), clover(80)).unwrap();
    let low = bin(dir.path())
        .args(["run", "--env", "staging", "--dry-run", "--yes"])
        .output()
        .unwrap();
    assert_eq!(low.status.code(), Some(1), "{}", text(&low));

    // The run recorded its project file: an edited one is refused on
    // resume, the same bytes are accepted.
    let project = dir.path().join("escola-runbook.toml");
    let original = std::fs::read_to_string(&project).unwrap();
    std::fs::write(&project, original.replace("min = 85", "min = 75")).unwrap();
    let changed = bin(dir.path()).args(["resume", "--yes"]).output().unwrap();
    assert_eq!(changed.status.code(), Some(2), "{}", text(&changed));
    assert!(
        text(&changed).contains("started with project file"),
        "{}",
        text(&changed)
    );
    std::fs::write(&project, &original).unwrap();
    std::fs::write(dir.path().join("build/logs/clover.xml"), clover(95)).unwrap();
    let resumed = bin(dir.path()).args(["resume", "--yes"]).output().unwrap();
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed));
}

/// The events of the latest run's journal.
fn journal_of(dir: &Path) -> Vec<serde_json::Value> {
    let runs = dir.join(".escola-runbook/runs");
    let run = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("journal.jsonl").is_file())
        .unwrap();
    std::fs::read_to_string(run.join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn init_writes_a_project_file_that_plans_and_refuses_to_overwrite_it() {
    let dir = tempfile::tempdir().unwrap();
    let init = bin(dir.path()).arg("init").output().unwrap();
    assert_eq!(init.status.code(), Some(0), "{}", text(&init));
    let again = bin(dir.path()).arg("init").output().unwrap();
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(text(&again).contains("--force"), "{}", text(&again));
    let forced = bin(dir.path()).args(["init", "--force"]).output().unwrap();
    assert_eq!(forced.status.code(), Some(0), "{}", text(&forced));
    // The file written parses back: `plan` reads it (its secrets' variables set).
    let plan = bin(dir.path())
        .arg("plan")
        .env("METRICS_TOKEN", "metrics-token-of-the-test")
        .env("DATABASE_URL", "mysql://u:p@127.0.0.1:1/db")
        .env("SLACK_WEBHOOK", "https://hooks.example/x")
        .output()
        .unwrap();
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    let plan = text(&plan);
    // The template's `watch.backlog_limit` with its database URL makes
    // `panel-sync-backlog` a watch of the backlog query.
    assert!(plan.contains("27 automated, 16 manual"), "{plan}");
    assert!(
        plan.contains("checks that rules sync-backlog hold"),
        "{plan}"
    );
    assert!(!plan.contains("metrics-token-of-the-test"), "{plan}");
}

#[test]
fn a_fresh_project_file_plans_before_its_secrets_are_exported_and_runs_only_after() {
    let dir = tempfile::tempdir().unwrap();
    let init = bin(dir.path()).arg("init").output().unwrap();
    assert_eq!(init.status.code(), Some(0), "{}", text(&init));
    let unset = |c: &mut Command| {
        c.env_remove("METRICS_TOKEN")
            .env_remove("DATABASE_URL")
            .env_remove("SLACK_WEBHOOK");
    };
    let mut plan = bin(dir.path());
    plan.args(["plan", "--env", "staging"]);
    unset(&mut plan);
    let plan = plan.output().unwrap();
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    // The same plan as with the variables set, and each unset one named.
    assert!(
        String::from_utf8_lossy(&plan.stdout).contains("27 automated, 16 manual"),
        "{}",
        text(&plan)
    );
    let warned = String::from_utf8_lossy(&plan.stderr);
    for var in ["METRICS_TOKEN", "DATABASE_URL", "SLACK_WEBHOOK"] {
        assert!(
            warned.contains(&format!("environment variable {var} is not set")),
            "{warned}"
        );
    }
    assert!(
        !warned.contains("unread:"),
        "the stand-in never shows: {warned}"
    );
    let mut run = bin(dir.path());
    run.args(["run", "--env", "staging", "--dry-run", "--yes"]);
    unset(&mut run);
    let run = run.output().unwrap();
    assert_eq!(run.status.code(), Some(2), "{}", text(&run));
    assert!(
        text(&run).contains("METRICS_TOKEN is not set"),
        "{}",
        text(&run)
    );
}

#[test]
fn project_file_mistakes_are_usage_errors_naming_the_place() {
    let dir = tempfile::tempdir().unwrap();
    let write = |body: &str| {
        std::fs::write(dir.path().join("escola-runbook.toml"), body).unwrap();
    };
    write("runbook = \"builtin\"\n[environments.staging]\nbase_ulr = \"http://x\"\n");
    let typo = bin(dir.path()).arg("plan").output().unwrap();
    assert_eq!(typo.status.code(), Some(2), "{}", text(&typo));
    assert!(
        text(&typo).contains("escola-runbook.toml:3:1:"),
        "{}",
        text(&typo)
    );
    assert!(
        text(&typo).contains("did you mean `base_url`?"),
        "{}",
        text(&typo)
    );

    write("runbook = \"builtin\"\n[environments.staging]\nmetrics_token = \"s3cret-value\"\n");
    let secret = bin(dir.path()).arg("plan").output().unwrap();
    assert_eq!(secret.status.code(), Some(2), "{}", text(&secret));
    assert!(
        text(&secret).contains("metrics_token_env"),
        "{}",
        text(&secret)
    );
    assert!(!text(&secret).contains("s3cret-value"), "{}", text(&secret));

    // A part the built-in runbook refuses is told as the file's.
    write(
        "runbook = \"builtin\"\n[environments.staging]\n[environments.staging.coverage]\nreport = \"c.xml\"\nmin = 185\n",
    );
    let bad = bin(dir.path()).arg("plan").output().unwrap();
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(
        text(&bad).contains("escola-runbook.toml: environment `staging`: ")
            && text(&bad).contains("parameter `min` has value `185`"),
        "{}",
        text(&bad)
    );

    write("runbook = \"builtin\"\n[environments.staging]\n[environments.qa]\n");
    let missing = bin(dir.path()).arg("plan").output().unwrap();
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
    assert!(
        text(&missing).contains("no environment `production`; it has: qa, staging"),
        "{}",
        text(&missing)
    );

    write("runbook = \"builtin\"\n[environments.staging]\nmetrics_token_file = \"token\"\n");
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret-value\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let open = bin(dir.path()).arg("plan").output().unwrap();
    assert_eq!(open.status.code(), Some(2), "{}", text(&open));
    assert!(text(&open).contains("chmod 600"), "{}", text(&open));

    // --set overrides the file; --config names another file.
    write(
        "runbook = \"builtin\"\n[environments.staging]\nbase_url = \"http://from-file.invalid\"\n",
    );
    std::fs::rename(
        dir.path().join("escola-runbook.toml"),
        dir.path().join("other.toml"),
    )
    .unwrap();
    let plan = bin(dir.path())
        .args(["plan", "--config", "other.toml", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(
        plan["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step"] == "smoke-tests")
            .unwrap()["automation"],
        "automated"
    );
    let text_plan = bin(dir.path())
        .args(["plan", "--config", "other.toml"])
        .output()
        .unwrap();
    let text_plan = text(&text_plan);
    assert!(
        text_plan.contains("automate: set `cdn_purge` in the project file"),
        "{text_plan}"
    );
}
