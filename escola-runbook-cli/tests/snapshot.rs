//! `escola-runbook snapshot ...` as a user runs it, against the real MariaDB
//! at 127.0.0.1:3306 (skipped when unreachable unless
//! ESCOLA_REQUIRE_SERVICES=1): a `kill -9` mid-snapshot leaves nothing that
//! looks valid, exit codes, and the URL's password in no output.

use std::path::Path;
use std::process::{Command, Output, Stdio};

mod support;
use support::{mariadb, mariadb_up, wait_for_partial_data};

fn bin(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_escola-runbook"));
    c.current_dir(dir)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    c
}

/// Runs `escola-runbook ARGS` in `dir`, with DBURL set to `url` if given.
fn cli(dir: &Path, args: &[&str], url: Option<&str>) -> Output {
    let mut c = bin(dir);
    c.args(args);
    match url {
        Some(u) => c.env("DBURL", u),
        None => c.env_remove("DBURL"),
    };
    c.output().unwrap()
}

/// `snapshot restore SNAPSHOT` into `target`, the URL from DBURL.
fn restore_args<'a>(snapshot: &'a str, target: &'a str) -> [&'a str; 7] {
    [
        "snapshot",
        "restore",
        snapshot,
        "--db-url-env",
        "DBURL",
        "--database",
        target,
    ]
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A database `PREFIX_PID` with a 150 000-row table `big` (about 40 MB of
/// SQL: long enough to stop mid-way), and its URL.
fn big_database(prefix: &str) -> (String, String) {
    let db = format!("{prefix}_{}", std::process::id());
    assert!(mariadb(&format!(
        "DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db}; USE {db};
         CREATE TABLE big (id INT PRIMARY KEY, v TEXT) ENGINE=InnoDB;
         INSERT INTO big SELECT seq, REPEAT(MD5(seq), 8) FROM seq_1_to_150000;"
    )));
    let url = format!("mysql://root@127.0.0.1:3306/{db}");
    (db, url)
}

#[test]
fn killed_snapshot_leaves_nothing_valid_and_commands_keep_their_exit_codes() {
    if !mariadb_up() {
        return;
    }
    let (db, url) = big_database("escola_t_cli");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let create = [
        "snapshot",
        "create",
        "--db-url-env",
        "DBURL",
        "--threads",
        "1",
        "--out",
    ];

    // kill -9 as soon as the partial directory has data in it.
    let mut child = bin(d)
        .args(create)
        .arg("snaps")
        .env("DBURL", &url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let snaps = d.join("snaps");
    wait_for_partial_data(&snaps);
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the snapshot finished before it could be killed"
    );
    let entries: Vec<String> = std::fs::read_dir(&snaps)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(
        entries[0].starts_with('.') && entries[0].ends_with(".partial"),
        "{entries:?}"
    );
    let partial = snaps.join(&entries[0]).display().to_string();
    let verify = cli(d, &["snapshot", "verify", &partial], None);
    assert_eq!(verify.status.code(), Some(1), "{}", text(&verify));
    assert!(text(&verify).contains("incomplete"), "{}", text(&verify));
    let list = cli(d, &["snapshot", "list", "snaps"], None);
    assert_eq!(list.status.code(), Some(1), "{}", text(&list));
    assert!(text(&list).contains("incomplete"), "{}", text(&list));

    // A full snapshot, then verify, list and restore.
    let created = cli(d, &[&create[..], &["snaps2"]].concat(), Some(&url));
    assert_eq!(created.status.code(), Some(0), "{}", text(&created));
    let path = String::from_utf8_lossy(&created.stdout).trim().to_owned();
    let verify = cli(d, &["snapshot", "verify", &path], None);
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify));
    let list = cli(d, &["snapshot", "list", "snaps2"], None);
    assert_eq!(list.status.code(), Some(0), "{}", text(&list));
    assert!(text(&list).contains("150000"), "{}", text(&list));
    let target = format!("{db}_r");
    let restore = restore_args(&path, &target);
    let first = cli(d, &restore, Some(&url));
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let again = cli(d, &restore, Some(&url));
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(text(&again).contains("not empty"), "{}", text(&again));
    let forced = cli(d, &[&restore[..], &["--force"]].concat(), Some(&url));
    assert_eq!(forced.status.code(), Some(0), "{}", text(&forced));

    mariadb(&format!(
        "DROP DATABASE IF EXISTS {db}; DROP DATABASE IF EXISTS {target}"
    ));
}

#[test]
fn the_password_never_shows_and_the_url_never_comes_from_argv() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let create = [
        "snapshot",
        "create",
        "--db-url-env",
        "DBURL",
        "--out",
        "snaps",
    ];
    let out = cli(
        d,
        &create,
        Some("mysql://app:hunter2-secret@127.0.0.1:1/escola"),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(!text(&out).contains("hunter2"), "{}", text(&out));
    assert!(text(&out).contains("127.0.0.1:1"), "{}", text(&out));
    let unset = cli(d, &create, None);
    assert_eq!(unset.status.code(), Some(2), "{}", text(&unset));
    let no_source = cli(d, &["snapshot", "create", "--out", "snaps"], None);
    assert_eq!(no_source.status.code(), Some(2), "{}", text(&no_source));
}

/// Whether the `age` tools run; when they do not, the test skips with a
/// printed reason, or fails with ESCOLA_REQUIRE_SERVICES=1.
fn age_installed() -> bool {
    let runs = |tool: &str| {
        Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if runs("age") && runs("age-keygen") {
        return true;
    }
    if std::env::var("ESCOLA_REQUIRE_SERVICES").as_deref() == Ok("1") {
        panic!("age and age-keygen are required (ESCOLA_REQUIRE_SERVICES=1)");
    }
    eprintln!("skipping: age is not installed (apt-get install age)");
    false
}

/// `CHECKSUM TABLE` of the test's two tables in `db`, as the client prints
/// them (without the database name).
fn checksums(db: &str) -> Vec<String> {
    let out = Command::new("mariadb")
        .args(["-uroot", "-h127.0.0.1", "-N", "-B", "-e"])
        .arg(format!("CHECKSUM TABLE {db}.`we``ird`, {db}.l1"))
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').nth(1).unwrap_or_default().to_owned())
        .collect()
}

/// `age-keygen -o dir/name`: the identity file (0600) and its public key.
fn keygen(dir: &Path, name: &str) -> String {
    let out = Command::new("age-keygen")
        .arg("-o")
        .arg(dir.join(name))
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    text.trim().trim_start_matches("Public key: ").to_owned()
}

#[test]
fn encrypted_snapshots_are_verified_without_a_key_and_restore_tested_with_one() {
    if !mariadb_up() || !age_installed() {
        return;
    }
    let db = format!("escola_t_cli_sealed_{}", std::process::id());
    assert!(mariadb(&format!(
        "DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db}; USE {db};
         SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO';
         CREATE TABLE `we``ird` (id INT PRIMARY KEY, f FLOAT, d DECIMAL(65,30), b VARBINARY(10),
           e VARCHAR(20), z DATE, `select` INT) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
         INSERT INTO `we``ird` VALUES (1, -46.63330841064453,
           '-12345678901234567890123456789012345.123456789012345678901234567890',
           0x00FF0027, 'emoji \u{1F600}', '0000-00-00', 1), (2, NULL, NULL, NULL, NULL, NULL, NULL);
         CREATE TABLE l1 (id INT PRIMARY KEY, t VARCHAR(20)) ENGINE=MyISAM DEFAULT CHARSET=latin1;
         INSERT INTO l1 VALUES (1, 'ol\u{e1}');
         CREATE VIEW v AS SELECT id FROM l1;
         CREATE TRIGGER trg AFTER INSERT ON l1 FOR EACH ROW SET @x = 1;"
    )));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let url = format!("mysql://root@127.0.0.1:3306/{db}");
    let public = keygen(d, "key.txt");
    let other = keygen(d, "other.txt");
    std::fs::write(d.join("recipients.txt"), format!("# ops\n{other}\n")).unwrap();
    let create = ["snapshot", "create", "--db-url-env", "DBURL", "--out"];

    // A bad recipient is refused, named, before anything is written.
    let bad = cli(
        d,
        &[&create[..], &["snaps", "--encrypt-to", "age1nope"]].concat(),
        Some(&url),
    );
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(text(&bad).contains("age1nope"), "{}", text(&bad));
    assert!(!d.join("snaps").exists());

    let created = cli(
        d,
        &[
            &create[..],
            &[
                "snaps",
                "--encrypt-to",
                &public,
                "--encrypt-to-file",
                "recipients.txt",
            ],
        ]
        .concat(),
        Some(&url),
    );
    assert_eq!(created.status.code(), Some(0), "{}", text(&created));
    assert!(text(&created).contains(&other), "{}", text(&created));
    let path = String::from_utf8_lossy(&created.stdout).trim().to_owned();

    let verify = cli(d, &["snapshot", "verify", &path], None);
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify));
    let decrypted = cli(
        d,
        &["snapshot", "verify", &path, "--identity", "key.txt"],
        None,
    );
    assert_eq!(decrypted.status.code(), Some(0), "{}", text(&decrypted));
    assert!(text(&decrypted).contains("decrypted plaintexts match"));

    let target = format!("{db}_r");
    let restore = restore_args(&path, &target);
    let keyless = cli(d, &restore, Some(&url));
    assert_eq!(keyless.status.code(), Some(2), "{}", text(&keyless));
    assert!(text(&keyless).contains("--identity"), "{}", text(&keyless));
    let restored = cli(
        d,
        &[&restore[..], &["--identity", "other.txt"]].concat(),
        Some(&url),
    );
    assert_eq!(restored.status.code(), Some(0), "{}", text(&restored));
    let restored_sums = checksums(&target);
    assert_eq!(restored_sums.len(), 2);
    assert!(
        restored_sums.iter().all(|c| c.parse::<u64>().is_ok()),
        "{restored_sums:?}"
    );
    assert_eq!(
        restored_sums,
        checksums(&db),
        "CHECKSUM TABLE after restore"
    );

    let tested = cli(
        d,
        &[
            "snapshot",
            "verify",
            &path,
            "--identity",
            "key.txt",
            "--restore-test",
            "--db-url-env",
            "DBURL",
        ],
        Some(&url),
    );
    assert_eq!(tested.status.code(), Some(0), "{}", text(&tested));
    assert!(
        text(&tested).contains("restore test passed"),
        "{}",
        text(&tested)
    );
    // The verify line comes from the restore test's own verify pass, once.
    assert_eq!(
        text(&tested).matches("decrypted plaintexts match").count(),
        1,
        "{}",
        text(&tested)
    );
    // Without a key the files are verified, then the test asks for one; a
    // key of no recipient fails the verify itself, as `verify` alone does.
    let test_args = [
        "snapshot",
        "verify",
        &path,
        "--restore-test",
        "--db-url-env",
        "DBURL",
    ];
    let keyless_test = cli(d, &test_args, Some(&url));
    assert_eq!(
        keyless_test.status.code(),
        Some(2),
        "{}",
        text(&keyless_test)
    );
    assert!(
        text(&keyless_test).contains("match the manifest"),
        "{}",
        text(&keyless_test)
    );
    assert!(
        text(&keyless_test).contains("--identity"),
        "{}",
        text(&keyless_test)
    );
    keygen(d, "stranger.txt");
    let stranger = cli(
        d,
        &[&test_args[..], &["--identity", "stranger.txt"]].concat(),
        Some(&url),
    );
    assert_eq!(stranger.status.code(), Some(2), "{}", text(&stranger));
    assert!(
        text(&stranger).contains("stranger.txt"),
        "{}",
        text(&stranger)
    );
    assert!(
        !text(&stranger).contains("match the manifest"),
        "{}",
        text(&stranger)
    );
    assert!(
        !text(&stranger).contains("restore test:"),
        "{}",
        text(&stranger)
    );
    let list = cli(d, &["snapshot", "list", "snaps"], None);
    assert_eq!(list.status.code(), Some(0), "{}", text(&list));
    assert!(text(&list).contains("passed"), "{}", text(&list));
    assert!(text(&list).contains("encrypted"), "{}", text(&list));
    for out in [
        &created, &verify, &decrypted, &keyless, &restored, &tested, &list,
    ] {
        assert!(!text(out).contains("AGE-SECRET-KEY-1"), "{}", text(out));
    }

    // Pruning needs a rule, and keeps the only (and proven) snapshot.
    let no_rule = cli(d, &["snapshot", "prune", "snaps", "--dry-run"], None);
    assert_eq!(no_rule.status.code(), Some(2), "{}", text(&no_rule));
    let pruned = cli(d, &["snapshot", "prune", "snaps", "--keep-days", "1"], None);
    assert_eq!(pruned.status.code(), Some(0), "{}", text(&pruned));
    assert!(
        text(&pruned).contains("kept") && text(&pruned).contains("passed its restore test"),
        "{}",
        text(&pruned)
    );
    assert!(d.join(&path).exists());

    // A restore test needs a server.
    let no_server = cli(d, &["snapshot", "verify", &path, "--restore-test"], None);
    assert_eq!(no_server.status.code(), Some(2), "{}", text(&no_server));

    mariadb(&format!(
        "DROP DATABASE IF EXISTS {db}; DROP DATABASE IF EXISTS {target}"
    ));
}

/// `mariadb -N -B -e SQL`'s output.
fn query(sql: &str) -> String {
    let out = Command::new("mariadb")
        .args(["-uroot", "-h127.0.0.1", "-N", "-B", "-e", sql])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn a_swap_killed_mid_restore_leaves_production_as_it_was() {
    if !mariadb_up() {
        return;
    }
    let (db, url) = big_database("escola_t_swap");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let created = cli(
        d,
        &[
            "snapshot",
            "create",
            "--db-url-env",
            "DBURL",
            "--threads",
            "1",
            "--out",
            "snaps",
        ],
        Some(&url),
    );
    assert_eq!(created.status.code(), Some(0), "{}", text(&created));
    let path = String::from_utf8_lossy(&created.stdout).trim().to_owned();
    // The bad deploy.
    query(&format!("DELETE FROM {db}.big WHERE id > 1000"));
    let damaged = query(&format!("CHECKSUM TABLE {db}.big"));

    // kill -9 once the shadow restore is writing rows.
    let swap = [
        "snapshot",
        "restore",
        &path,
        "--db-url-env",
        "DBURL",
        "--swap-into",
        &db,
    ];
    let mut child = bin(d)
        .args(swap)
        .env("DBURL", &url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let shadow = format!("{db}_shadow_restore_{}", child.id());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while query(&format!(
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{shadow}' AND TABLE_ROWS > 0"
    )) == "0"
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the shadow never got rows"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    assert!(
        !child.wait().unwrap().success(),
        "the swap finished before it could be killed"
    );
    assert_eq!(
        query(&format!("CHECKSUM TABLE {db}.big")),
        damaged,
        "production untouched"
    );
    assert_eq!(query(&format!("SELECT COUNT(*) FROM {db}.big")), "1000");

    // Run to the end: production is the snapshot, the damaged table kept.
    let backup = format!("{db}_kept");
    let done = cli(
        d,
        &[&swap[..], &["--backup-into", &backup]].concat(),
        Some(&url),
    );
    assert_eq!(done.status.code(), Some(0), "{}", text(&done));
    assert!(
        text(&done).contains(&format!("replaced tables are in `{backup}`")),
        "{}",
        text(&done)
    );
    assert_eq!(query(&format!("SELECT COUNT(*) FROM {db}.big")), "150000");
    assert_eq!(
        query(&format!("CHECKSUM TABLE {backup}.big"))
            .split('\t')
            .nth(1),
        damaged.split('\t').nth(1)
    );
    // A backup that holds tables is refused (usage, exit 2), as is naming
    // both a database and a swap.
    let again = cli(
        d,
        &[&swap[..], &["--backup-into", &backup]].concat(),
        Some(&url),
    );
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(
        text(&again).contains("already holds tables"),
        "{}",
        text(&again)
    );
    let both = cli(d, &[&swap[..], &["--database", "x"]].concat(), Some(&url));
    assert_eq!(both.status.code(), Some(2), "{}", text(&both));

    mariadb(&format!(
        "DROP DATABASE IF EXISTS {db}; DROP DATABASE IF EXISTS {backup}; DROP DATABASE IF EXISTS {shadow}"
    ));
}

/// MariaDB and moto (skipped, like MariaDB, when it is not installed
/// unless ESCOLA_REQUIRE_SERVICES=1) with the bucket `snaps`, and the
/// database `escola_t_cli_NAME_PID` of 500 rows in table `t`.
fn offsite_setup(name: &str) -> Option<(escola_runbook_testkit::moto::MotoServer, String)> {
    if !mariadb_up() {
        return None;
    }
    let moto = escola_runbook_testkit::moto::MotoServer::for_test(&[])?;
    moto.create_bucket("snaps").unwrap();
    let db = format!("escola_t_cli_{name}_{}", std::process::id());
    assert!(mariadb(&format!(
        "DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db}; USE {db};
         CREATE TABLE t (id INT PRIMARY KEY, v TEXT);
         INSERT INTO t SELECT seq, MD5(seq) FROM seq_1_to_500;"
    )));
    Some((moto, db))
}

/// `escola-runbook ARGS` in `dir`, DBURL naming the database `db`, with
/// the variables `vars` (the AWS_* ones).
fn run_on(dir: &Path, db: &str, args: &[&str], vars: &[(String, String)]) -> Output {
    bin(dir)
        .args(args)
        .env("DBURL", format!("mysql://root@127.0.0.1:3306/{db}"))
        .env("NO_COLOR", "1")
        .envs(vars.iter().cloned())
        .output()
        .unwrap()
}

/// The two lines `snapshot create --copy-to URL` prints: the local
/// directory and the remote copy (`created` must have succeeded).
fn local_and_remote(created: &Output) -> (String, String) {
    assert_eq!(created.status.code(), Some(0), "{}", text(created));
    let stdout = String::from_utf8_lossy(&created.stdout).into_owned();
    let mut lines = stdout.lines().map(str::to_owned);
    (lines.next().unwrap(), lines.next().unwrap())
}

/// `snapshot create --out snaps --copy-to s3://snaps/escola`.
const CREATE_COPIED: [&str; 8] = [
    "snapshot",
    "create",
    "--db-url-env",
    "DBURL",
    "--out",
    "snaps",
    "--copy-to",
    "s3://snaps/escola",
];

/// Off-site copies through moto (skipped, like MariaDB, when it is not
/// installed unless ESCOLA_REQUIRE_SERVICES=1): exit codes, errors that
/// say what to do, and the secret key in no output.
#[test]
fn off_site_commands_keep_their_exit_codes_and_never_show_the_secret_key() {
    use escola_runbook_testkit::moto::MotoServer;
    let Some((moto, db)) = offsite_setup("s3") else {
        return;
    };
    const SECRET: &str = "wJalrXUtnFEMI-never-shown-K7MDENG";
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut outputs = Vec::new();
    let mut run = |args: &[&str], vars: &[(String, String)]| {
        let o = run_on(d, &db, args, vars);
        outputs.push(text(&o));
        o
    };
    let aws = moto.aws_vars(SECRET);

    let (local, remote) = local_and_remote(&run(&CREATE_COPIED, &aws));
    let name = Path::new(&local)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert_eq!(remote, format!("s3://snaps/escola/{name}"));

    let list = run(&["snapshot", "list", "--from", "s3://snaps/escola"], &aws);
    assert_eq!(list.status.code(), Some(0), "{}", text(&list));
    assert!(
        text(&list).contains(&name) && text(&list).contains("complete"),
        "{}",
        text(&list)
    );
    let verify = run(&["snapshot", "verify", &remote], &aws);
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify));
    assert!(
        text(&verify).contains(&format!("{remote}: ok")),
        "{}",
        text(&verify)
    );
    let again = run(
        &["snapshot", "push", &local, "--to", "s3://snaps/escola"],
        &aws,
    );
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(
        text(&again).contains("0 objects uploaded"),
        "{}",
        text(&again)
    );
    let target = format!("{db}_r");
    let restore = run(&restore_args(&remote, &target), &aws);
    assert_eq!(restore.status.code(), Some(0), "{}", text(&restore));
    assert!(text(&restore).contains("500 rows"), "{}", text(&restore));

    // The restore test of the remote copy, recorded on the store.
    let test = run(
        &[
            "snapshot",
            "verify",
            &remote,
            "--restore-test",
            "--db-url-env",
            "DBURL",
        ],
        &aws,
    );
    assert_eq!(test.status.code(), Some(0), "{}", text(&test));
    assert!(
        text(&test).contains("restore test passed") && text(&test).contains("1 table, 500 rows"),
        "{}",
        text(&test)
    );
    let list = run(&["snapshot", "list", "--from", "s3://snaps/escola"], &aws);
    assert!(text(&list).contains("passed "), "{}", text(&list));

    // Usage: a bad scheme; a server for verify without --restore-test (exit 2).
    let bad = run(&["snapshot", "verify", "gs://snaps/escola"], &aws);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(
        text(&bad).contains("scheme `gs` is not supported"),
        "{}",
        text(&bad)
    );
    for at in [remote.as_str(), local.as_str()] {
        let ignored = run(&["snapshot", "verify", at, "--db-url-env", "DBURL"], &aws);
        assert_eq!(ignored.status.code(), Some(2), "{}", text(&ignored));
        assert!(
            text(&ignored).contains("add --restore-test"),
            "{}",
            text(&ignored)
        );
    }
    // Failures (exit 1): a missing bucket, refused credentials, nothing there.
    let missing = run(
        &["snapshot", "list", "--from", "s3://no-such-bucket/escola"],
        &aws,
    );
    assert_eq!(missing.status.code(), Some(1), "{}", text(&missing));
    assert!(
        text(&missing).contains("bucket `no-such-bucket` does not exist"),
        "{}",
        text(&missing)
    );
    let nothing = run(&restore_args("s3://snaps/escola/nothing", &target), &aws);
    assert_eq!(nothing.status.code(), Some(1), "{}", text(&nothing));
    assert!(
        text(&nothing).contains("no snapshot there"),
        "{}",
        text(&nothing)
    );
    let Some(strict) = MotoServer::for_test(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")]) else {
        return;
    };
    let denied = run(
        &["snapshot", "list", "--from", "s3://snaps/escola"],
        &strict.aws_vars(SECRET),
    );
    assert_eq!(denied.status.code(), Some(1), "{}", text(&denied));
    assert!(text(&denied).contains("access denied"), "{}", text(&denied));
    assert!(
        text(&denied).contains("AWS_SECRET_ACCESS_KEY"),
        "{}",
        text(&denied)
    );

    for out in &outputs {
        assert!(!out.contains(SECRET), "the secret key shows: {out}");
    }
    mariadb(&format!(
        "DROP DATABASE IF EXISTS {db}; DROP DATABASE IF EXISTS {target}"
    ));
}

/// `snapshot prune --from s3://...` through moto: what it keeps and why,
/// a dry run that deletes nothing, and a server gone (exit 1).
#[test]
fn remote_prune_keeps_the_newest_and_the_proven_and_says_why() {
    let Some((moto, db)) = offsite_setup("s3prune") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let aws = moto.aws_vars("not-a-real-secret");
    let run = |args: &[&str], vars: &[(String, String)]| run_on(d, &db, args, vars);
    let mut names = Vec::new();
    for _ in 0..3 {
        names.push(local_and_remote(&run(&CREATE_COPIED, &aws)).1);
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let name = |n: usize| names[n].rsplit('/').next().unwrap().to_owned();
    // The oldest proven on the store.
    let proven = run(
        &[
            "snapshot",
            "verify",
            &names[0],
            "--restore-test",
            "--db-url-env",
            "DBURL",
        ],
        &aws,
    );
    assert_eq!(proven.status.code(), Some(0), "{}", text(&proven));
    let prune = |extra: &[&str], vars: &[(String, String)]| {
        let mut args = vec![
            "snapshot",
            "prune",
            "--from",
            "s3://snaps/escola",
            "--keep-last",
            "1",
        ];
        args.extend_from_slice(extra);
        run(&args, vars)
    };

    let dry = prune(&["--dry-run"], &aws);
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry));
    let out = text(&dry);
    assert!(
        out.contains(&format!("kept         {}: one of the newest 1", name(2))),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "kept         {}: the newest that passed its restore test",
            name(0)
        )),
        "{out}"
    );
    assert!(out.contains(&format!("would delete {}", name(1))), "{out}");
    assert!(out.contains("2 kept, 1 would delete (dry run)"), "{out}");
    let list = run(&["snapshot", "list", "--from", "s3://snaps/escola"], &aws);
    assert!(text(&list).contains(&name(1)), "a dry run deletes nothing");

    let done = prune(&[], &aws);
    assert_eq!(done.status.code(), Some(0), "{}", text(&done));
    assert!(
        text(&done).contains(&format!("deleted      {}", name(1))),
        "{}",
        text(&done)
    );
    let list = run(&["snapshot", "list", "--from", "s3://snaps/escola"], &aws);
    let listed = text(&list);
    assert!(!listed.contains(&name(1)), "{listed}");
    assert!(
        listed.contains(&name(0)) && listed.contains(&name(2)),
        "{listed}"
    );

    // Neither a directory nor --from (usage), and a server gone (exit 1).
    let neither = run(&["snapshot", "prune", "--keep-last", "1"], &aws);
    assert_eq!(neither.status.code(), Some(2), "{}", text(&neither));
    drop(moto);
    let gone = prune(&[], &aws);
    assert_eq!(gone.status.code(), Some(1), "{}", text(&gone));
    assert!(
        text(&gone).contains("nothing was deleted"),
        "{}",
        text(&gone)
    );
    mariadb(&format!("DROP DATABASE IF EXISTS {db}"));
}

/// The `db-snapshot` step's `copy_to` through moto: from `check`, from a
/// TOML runbook and from the project file's `snapshot_copy_to`; a copy
/// that fails fails the step and keeps the local snapshot.
#[test]
fn the_db_snapshot_step_copies_off_site_and_fails_when_the_copy_does() {
    let Some((moto, db)) = offsite_setup("s3step") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let aws = moto.aws_vars("not-a-real-secret");
    let run = |args: &[&str]| run_on(d, &db, args, &aws);
    let listed = |prefix: &str| text(&run(&["snapshot", "list", "--from", prefix]));
    let check = |copy_to: &str| {
        run(&[
            "check",
            "db-snapshot",
            "-p",
            "out_dir=snaps",
            "-p",
            "restore_test=true",
            "-p",
            &format!("copy_to={copy_to}"),
            "--secret",
            "database_url=DBURL",
        ])
    };

    // Proven, then copied: the copy carries verified.json.
    let copied = check("s3://snaps/check");
    assert_eq!(copied.status.code(), Some(0), "{}", text(&copied));
    assert!(
        text(&copied).contains("s3://snaps/check/"),
        "{}",
        text(&copied)
    );
    let list = listed("s3://snaps/check");
    assert!(
        list.contains("complete") && list.contains("passed "),
        "{list}"
    );

    // A copy that fails: the step fails, the local snapshot stays.
    let failed = check("s3://no-such-bucket/escola");
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed));
    let out = text(&failed);
    assert!(
        out.contains("off-site copy to s3://no-such-bucket/escola failed"),
        "{out}"
    );
    assert!(out.contains("does not exist"), "{out}");
    assert!(out.contains("local snapshot kept"), "{out}");
    let local = std::fs::read_dir(d.join("snaps")).unwrap().count();
    assert_eq!(local, 2, "both snapshots are kept locally");

    // A bad URL is refused before anything is taken.
    let bad = check("gs://snaps/escola");
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(text(&bad).contains("copy_to"), "{}", text(&bad));

    // A TOML runbook's step.
    std::fs::write(
        d.join("offsite.toml"),
        "name = \"offsite\"\n[[phases]]\nid = \"pre\"\ntitle = \"Antes\"\n\
         [[phases.steps]]\nid = \"db-snapshot\"\ntitle = \"Snapshot\"\ncheck = \"db-snapshot\"\n\
         params = { out_dir = \"snaps\", copy_to = \"s3://snaps/toml\" }\n",
    )
    .unwrap();
    let toml = run(&[
        "run",
        "--runbook",
        "offsite.toml",
        "--secret",
        "database_url=DBURL",
        "--yes",
    ]);
    assert_eq!(toml.status.code(), Some(0), "{}", text(&toml));
    assert!(listed("s3://snaps/toml").contains("complete"));

    // The built-in runbook, from the project file.
    std::fs::write(
        d.join("escola-runbook.toml"),
        "runbook = \"builtin\"\n[environments.production]\ndatabase_url_env = \"DBURL\"\n\
         snapshot_dir = \"snaps\"\nsnapshot_copy_to = \"s3://snaps/project\"\n",
    )
    .unwrap();
    let project = run(&["run", "--yes", "--only", "db-snapshot"]);
    assert_eq!(project.status.code(), Some(0), "{}", text(&project));
    assert!(listed("s3://snaps/project").contains("complete"));
    mariadb(&format!("DROP DATABASE IF EXISTS {db}"));
}

#[test]
fn from_takes_a_store_and_tells_a_local_directory_where_it_goes() {
    let dir = tempfile::tempdir().unwrap();
    for command in ["list", "prune"] {
        let mut args = vec!["snapshot", command, "--from", "snapshots"];
        if command == "prune" {
            args.extend(["--keep-last", "3"]);
        }
        let out = cli(dir.path(), &args, None);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(
            text(&out).contains("a local directory goes without --from (DIR)"),
            "{command}: {}",
            text(&out)
        );
    }
    // A URL of another scheme is told as such, without the hint.
    let out = cli(
        dir.path(),
        &["snapshot", "list", "--from", "gs://bucket/x"],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("scheme `gs` is not supported"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains("without --from"), "{}", text(&out));
}
