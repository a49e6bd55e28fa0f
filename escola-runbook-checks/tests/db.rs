//! Against the real MariaDB at 127.0.0.1:3306 (root, empty password). When it
//! is not reachable these tests skip, unless ESCOLA_REQUIRE_SERVICES=1.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use escola_runbook_checks::db::{
    self, DbSnapshotCheck, LossEstimateCheck, MigrationsCheck, RestoreError, RestoreOptions,
    SnapshotFreshCheck, SnapshotOptions, SnapshotStatus, SyncBacklogCheck, VerifyError,
};
use escola_runbook_core::{Check, Ctx, Environment, Secret, Secrets, Status};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Value};

const ROOT: &str = "mysql://root@127.0.0.1:3306";

async fn server() -> Option<Conn> {
    let opts = mysql_async::Opts::from_url(ROOT).unwrap();
    match Conn::new(opts).await {
        Ok(c) => Some(c),
        Err(e) => {
            if std::env::var("ESCOLA_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("MariaDB at 127.0.0.1:3306 is required (ESCOLA_REQUIRE_SERVICES=1): {e}");
            }
            eprintln!("skipping: MariaDB at 127.0.0.1:3306 is not reachable: {e}");
            None
        }
    }
}

static SEQ: AtomicU32 = AtomicU32::new(0);

fn unique(prefix: &str) -> String {
    format!(
        "escola_t_{prefix}_{}_{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

fn url(db: &str) -> Secret {
    Secret::new(format!("{ROOT}/{db}"))
}

async fn exec_all(conn: &mut Conn, sql: &[&str]) {
    for s in sql {
        conn.query_drop(*s)
            .await
            .unwrap_or_else(|e| panic!("{s}: {e}"));
    }
}

const SCHEMA: &[&str] = &[
    "SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO'",
    "SET time_zone = '+00:00'",
    "SET foreign_key_checks = 0",
    r"CREATE TABLE `all types` (
        id INT UNSIGNED NOT NULL PRIMARY KEY,
        ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED, mi MEDIUMINT, miu MEDIUMINT UNSIGNED,
        i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
        dec65 DECIMAL(65,30), f FLOAT, d DOUBLE, bt BIT(13),
        bin BINARY(4), vbin VARBINARY(64), bl LONGBLOB,
        c CHAR(10), vc VARCHAR(100), tx TEXT, l1 VARCHAR(50) CHARACTER SET latin1, l1t TEXT CHARACTER SET latin1,
        js JSON, dt DATE, dtm DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL, tm TIME(6), yr YEAR,
        en ENUM('a','b c','d''e'), st SET('x','y','z'),
        `select` INT, `we``ird col` VARCHAR(10),
        gen_v INT AS (i * 2) VIRTUAL, gen_s VARCHAR(20) AS (CONCAT(vc, '!')) STORED
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    "INSERT INTO `all types` (id, ti, tiu, si, siu, mi, miu, i, iu, bi, biu, dec65, f, d, bt, bin, vbin, bl, c, vc, tx, l1, l1t, js, dt, dtm, ts, tm, yr, en, st, `select`, `we``ird col`) VALUES
      (0, -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295, -9223372036854775808, 18446744073709551615,
       '-12345678901234567890123456789012345.123456789012345678901234567890', -46.63330841064453, 2.2250738585072014e-308, b'1010101010101',
       0x00FF0027, 0x5C27220A0D1A00, 0x000102030405FFFE, 'a', '', 'line1\\nline2\\ttab ''quote'' \\\\ back', 'caf\u{e9}', 'ol\u{e1} \u{e7}', '{\"k\": [1, 2.5, \"\u{1F600}\"]}',
       '0000-00-00', '0000-00-00 00:00:00', '1970-01-01 00:00:01.000001', '-838:59:59.999999', 0, 'd''e', 'x,z', 1, 'w`c'),
      (1, 127, 0, 32767, 0, 8388607, 0, 2147483647, 0, 9223372036854775807, 0,
       '99999999999999999999999999999999999.999999999999999999999999999999', 3.4028235e38, 1.7976931348623157e308, b'0',
       'ab', '', '', '', 'emoji \u{1F600} \\0nul', '', '', '', 'null',
       '9999-12-31', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999999', '838:59:59', 2155, '', '', NULL, ''),
      (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
      (3, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, '0.000000000000000000000000000001', 1.17549435e-38, -0.1, b'1111111111111',
       NULL, 0x00, 0x00, 'x', 'x', 'x', '', '\u{ff}', '[]',
       '2024-02-29', '2024-02-29 12:34:56.5', '2024-02-29 12:34:56.5', '-00:00:00.000001', 1901, 'b c', 'x,y,z', 0, 'x')",
    "UPDATE `all types` SET f = -46.63330841064453 WHERE id = 0",
    "CREATE TABLE parent (id INT PRIMARY KEY, name VARCHAR(20)) ENGINE=InnoDB",
    "CREATE TABLE child (id INT PRIMARY KEY, parent_id INT, KEY (parent_id), CONSTRAINT fk_parent FOREIGN KEY (parent_id) REFERENCES parent (id) ON DELETE CASCADE) ENGINE=InnoDB",
    "INSERT INTO child VALUES (1, 1), (2, 2)",
    "INSERT INTO parent VALUES (1, 'um'), (2, 'dois')",
    "CREATE TABLE legacy (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(20)) ENGINE=MyISAM",
    "INSERT INTO legacy (note) VALUES ('a'), ('b'), (NULL)",
    "CREATE TABLE nopk (a INT, b VARCHAR(5)) ENGINE=InnoDB",
    "INSERT INTO nopk VALUES (1, 'x'), (1, 'x'), (NULL, NULL)",
    "CREATE TABLE big (id BIGINT PRIMARY KEY, v VARCHAR(20), KEY v (v), KEY v_id (v, id)) ENGINE=InnoDB",
    "INSERT INTO big SELECT seq, CONCAT('row ', seq) FROM seq_1_to_3000",
    "ANALYZE TABLE big",
    "CREATE TABLE audit (n INT) ENGINE=InnoDB",
    "CREATE VIEW v_base AS SELECT id, name FROM parent",
    "CREATE VIEW `a view` AS SELECT id FROM v_base WHERE id > 1",
    "CREATE TRIGGER trg_parent AFTER INSERT ON parent FOR EACH ROW BEGIN INSERT INTO audit VALUES (NEW.id); INSERT INTO audit VALUES (NEW.id + 1000); END",
    "CREATE PROCEDURE p_count(OUT n INT) BEGIN SELECT COUNT(*) INTO n FROM parent; SELECT n; END",
    "CREATE FUNCTION f_double(x INT) RETURNS INT DETERMINISTIC RETURN x * 2",
    "CREATE EVENT ev_noop ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM audit WHERE n < 0",
];

async fn create_db(conn: &mut Conn, db: &str, stmts: &[&str]) {
    conn.query_drop(format!("CREATE DATABASE `{db}` CHARACTER SET utf8mb4"))
        .await
        .unwrap();
    conn.query_drop(format!("USE `{db}`")).await.unwrap();
    exec_all(conn, stmts).await;
}

async fn drop_dbs(conn: &mut Conn, dbs: &[&str]) {
    for db in dbs {
        let _ = conn
            .query_drop(format!("DROP DATABASE IF EXISTS `{db}`"))
            .await;
    }
}

async fn base_tables(conn: &mut Conn, db: &str) -> Vec<String> {
    conn.exec(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
        (db,),
    )
    .await
    .unwrap()
}

/// Every row of every base table, read through the binary protocol in key
/// order with the session in UTC and raw bytes.
async fn contents(conn: &mut Conn, db: &str) -> Vec<(String, Vec<Vec<Value>>)> {
    conn.query_drop("SET time_zone = '+00:00'").await.unwrap();
    let tables = base_tables(conn, db).await;
    let mut out = Vec::new();
    for t in tables {
        let q = format!("SELECT * FROM `{db}`.`{t}`");
        let rows: Vec<Row> = conn.exec(q, ()).await.unwrap();
        let mut rows: Vec<Vec<Value>> = rows.into_iter().map(Row::unwrap).collect();
        rows.sort_by_key(|r| format!("{r:?}"));
        out.push((t, rows));
    }
    out
}

async fn checksums(conn: &mut Conn, db: &str) -> Vec<(String, Option<u64>)> {
    let tables = base_tables(conn, db).await;
    let mut out = Vec::new();
    for t in tables {
        let row: Option<(String, Option<u64>)> = conn
            .query_first(format!("CHECKSUM TABLE `{db}`.`{t}`"))
            .await
            .unwrap();
        out.push((t, row.unwrap().1));
    }
    out
}

async fn objects(conn: &mut Conn, db: &str) -> Vec<String> {
    let mut names: Vec<String> = conn
        .exec(
            "SELECT CONCAT('view ', TABLE_NAME) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?
             UNION ALL SELECT CONCAT('trigger ', TRIGGER_NAME) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?
             UNION ALL SELECT CONCAT(ROUTINE_TYPE, ' ', ROUTINE_NAME) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?
             UNION ALL SELECT CONCAT('event ', EVENT_NAME) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?
             UNION ALL SELECT CONCAT('fk ', CONSTRAINT_NAME) FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ?",
            (db, db, db, db, db),
        )
        .await
        .unwrap();
    names.sort();
    names
}

async fn assert_same(conn: &mut Conn, a: &str, b: &str) {
    let (ca, cb) = (contents(conn, a).await, contents(conn, b).await);
    assert_eq!(ca.len(), cb.len());
    for ((ta, ra), (tb, rb)) in ca.iter().zip(&cb) {
        assert_eq!(ta, tb);
        assert_eq!(ra.len(), rb.len(), "row count of {ta}");
        for (x, y) in ra.iter().zip(rb) {
            assert_eq!(x, y, "table {ta}");
        }
    }
    assert_eq!(checksums(conn, a).await, checksums(conn, b).await);
    assert_eq!(objects(conn, a).await, objects(conn, b).await);
    assert_eq!(definitions(conn, a).await, definitions(conn, b).await);
}

/// Every base table's `SHOW CREATE TABLE`: columns, keys in their order,
/// engine and options, the same whichever way the keys were built.
async fn definitions(conn: &mut Conn, db: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for t in base_tables(conn, db).await {
        let row: Option<(String, String)> = conn
            .query_first(format!("SHOW CREATE TABLE `{db}`.`{t}`"))
            .await
            .unwrap();
        out.push(row.unwrap());
    }
    out
}

/// Flips one byte in the middle of the first data file of the snapshot in
/// `dir`, and checks that `verify` (no key) sees it.
fn flip_a_data_byte(dir: &Path, manifest: &db::Manifest) {
    let data = manifest.files.iter().find(|f| f.table.is_some()).unwrap();
    let path = dir.join(&data.name);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let err = db::verify(dir, None).unwrap_err();
    assert!(
        matches!(err, VerifyError::Mismatch { what: "sha256", .. }),
        "{err}"
    );
}

fn stock_restore(dir: &Path, manifest: &db::Manifest, target: &str) {
    let status = Command::new("mariadb")
        .args(["-uroot", "-h127.0.0.1", "-e"])
        .arg(format!("CREATE DATABASE `{target}` CHARACTER SET utf8mb4"))
        .status()
        .unwrap();
    assert!(status.success());
    let files: Vec<String> = manifest
        .files
        .iter()
        .map(|f| dir.join(&f.name).display().to_string())
        .collect();
    let mut zstd = Command::new("zstd")
        .arg("-dc")
        .args(&files)
        .stdout(Stdio::piped())
        .spawn()
        .expect("zstd must be installed (apt-get install zstd)");
    let out = Command::new("mariadb")
        .args(["-uroot", "-h127.0.0.1", target])
        .stdin(zstd.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(zstd.wait().unwrap().success());
    assert!(
        out.status.success(),
        "mariadb client: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A snapshot of `src` into `out` in small chunks and statements on three
/// threads, encrypted to `encrypt_to`; `src` is dropped if it fails.
async fn tricky_snapshot(
    conn: &mut Conn,
    src: &str,
    out: &Path,
    encrypt_to: Vec<db::Recipient>,
) -> (std::path::PathBuf, db::Manifest) {
    let mut opts = SnapshotOptions::new(out);
    opts.threads = 3;
    opts.chunk_rows = 700;
    opts.statement_bytes = 4096;
    opts.encrypt_to = encrypt_to;
    match db::snapshot::create(&url(src), &opts).await {
        Ok(r) => r,
        Err(e) => {
            drop_dbs(conn, &[src]).await;
            panic!("snapshot: {e}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_round_trips_through_our_restore_and_the_stock_client() {
    let Some(mut conn) = server().await else {
        return;
    };
    let src = unique("src");
    let (ours, stock) = (unique("ours"), unique("stock"));
    create_db(&mut conn, &src, SCHEMA).await;
    let out = tempfile::tempdir().unwrap();
    let (dir, manifest) = tricky_snapshot(&mut conn, &src, out.path(), Vec::new()).await;

    // Layout, permissions, manifest.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    for f in &manifest.files {
        let mode = std::fs::metadata(dir.join(&f.name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{}", f.name);
    }
    let big_chunks = manifest
        .files
        .iter()
        .filter(|f| f.table.as_deref() == Some("big"))
        .count();
    assert!(
        big_chunks >= 3,
        "big should be split by key, got {big_chunks} files"
    );
    let counts = db::snapshot::row_counts(&manifest);
    assert_eq!(counts[&format!("{src}.big")], 3000);
    assert_eq!(counts[&format!("{src}.all types")], 4);
    assert_eq!(counts[&format!("{src}.legacy")], 3);
    assert_eq!(
        manifest.consistency.non_transactional_tables,
        vec![format!("{src}.legacy")]
    );
    assert!(manifest.consistency.global_read_lock_ms.is_some());
    let all = manifest.databases[0]
        .tables
        .iter()
        .find(|t| t.name == "all types")
        .unwrap();
    assert_eq!(all.generated_columns, ["gen_v", "gen_s"]);
    db::verify(&dir, None).unwrap();

    let report = db::restore(&dir, &url(&src), &RestoreOptions::new(&ours)).await;
    let stock_result = std::panic::catch_unwind(|| stock_restore(&dir, &manifest, &stock));
    let report = report.unwrap();
    assert_eq!(report.rows, manifest.total_rows);
    // big's data files load over several connections, and its two plain
    // keys are built after its rows; the keys of the tables a foreign key
    // joins, and of the MyISAM table, stay where they were dumped.
    assert!(report.connections > 1, "{report:?}");
    assert_eq!(report.deferred_keys, 2, "{report:?}");
    // The rows went as LOAD DATA where their values allow it (the server's
    // local_infile is on by default); the binary ones, in hex, as SQL.
    assert!(report.load_data_statements > 0, "{report:?}");
    assert!(
        report.load_data_statements < report.statements,
        "{report:?}"
    );
    stock_result.unwrap();

    // The FLOAT the stock dump tool loses, exactly.
    let f: Option<f32> = conn
        .exec_first(
            format!("SELECT f FROM `{ours}`.`all types` WHERE id = 0"),
            (),
        )
        .await
        .unwrap();
    assert_eq!(f.map(f64::from), Some(-46.633_308_410_644_53));

    assert_same(&mut conn, &src, &ours).await;
    assert_same(&mut conn, &src, &stock).await;

    // Triggers were created after the data: the restore did not fire them.
    let audit: Option<u64> = conn
        .query_first(format!("SELECT COUNT(*) FROM `{ours}`.audit"))
        .await
        .unwrap();
    assert_eq!(audit, Some(0));

    // A non-empty target is refused unless forced.
    let err = db::restore(&dir, &url(&src), &RestoreOptions::new(&ours))
        .await
        .unwrap_err();
    assert!(matches!(err, RestoreError::TargetNotEmpty { .. }), "{err}");
    let mut forced = RestoreOptions::new(&ours);
    forced.force = true;
    db::restore(&dir, &url(&src), &forced).await.unwrap();
    assert_same(&mut conn, &src, &ours).await;

    drop_dbs(&mut conn, &[&src, &ours, &stock]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corruption_and_interruption_never_look_valid() {
    let Some(mut conn) = server().await else {
        return;
    };
    let src = unique("corrupt");
    create_db(
        &mut conn,
        &src,
        &[
            "CREATE TABLE t (id INT PRIMARY KEY, v TEXT)",
            "INSERT INTO t SELECT seq, REPEAT('x', seq) FROM seq_1_to_200",
        ],
    )
    .await;
    let out = tempfile::tempdir().unwrap();
    let (dir, manifest) = db::snapshot::create(&url(&src), &SnapshotOptions::new(out.path()))
        .await
        .unwrap();

    // An interrupted snapshot: a partial directory with files, no manifest.
    let partial = out.path().join(".escola-20260101T000000Z.partial");
    std::fs::create_dir(&partial).unwrap();
    std::fs::write(partial.join("0000-x.schema.sql.zst"), b"junk").unwrap();
    let listed = db::list(out.path(), true).unwrap();
    assert_eq!(listed.len(), 2);
    let complete = listed.iter().find(|l| l.path == dir).unwrap();
    assert_eq!(complete.status, SnapshotStatus::Complete);
    assert_eq!(complete.rows, 200);
    assert!(complete.bytes > 0);
    let interrupted = listed.iter().find(|l| l.path == partial).unwrap();
    assert_eq!(interrupted.status, SnapshotStatus::Incomplete);
    assert!(matches!(
        db::verify(&partial, None),
        Err(VerifyError::NoManifest(_))
    ));

    // Flip one byte of a data file.
    flip_a_data_byte(&dir, &manifest);
    let listed = db::list(out.path(), true).unwrap();
    let damaged = listed.iter().find(|l| l.path == dir).unwrap();
    assert!(
        matches!(damaged.status, SnapshotStatus::Damaged(_)),
        "{damaged:?}"
    );
    let target = unique("never");
    let err = db::restore(&dir, &url(&src), &RestoreOptions::new(&target))
        .await
        .unwrap_err();
    assert!(matches!(err, RestoreError::Verify(_)), "{err}");
    let exists: Option<String> = conn
        .exec_first(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
            (&target,),
        )
        .await
        .unwrap();
    assert_eq!(exists, None, "a refused restore must not create the target");

    // A cancelled snapshot leaves nothing behind.
    let mut opts = SnapshotOptions::new(out.path().join("cancelled"));
    opts.cancel.cancel();
    opts.statement_bytes = 1024;
    let r = db::snapshot::create(&url(&src), &opts).await;
    assert!(r.is_err());
    let left: Vec<_> = std::fs::read_dir(out.path().join("cancelled"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // A snapshot whose future is dropped mid-way (a step timeout) too.
    let dropped_dir = out.path().join("dropped");
    let mut opts = SnapshotOptions::new(&dropped_dir);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let tx = std::sync::Mutex::new(Some(tx));
    opts.progress = Some(std::sync::Arc::new(move |p: &db::SnapshotProgress| {
        if p.files_done > 0 {
            if let Some(tx) = tx.lock().unwrap().take() {
                let _ = tx.send(());
            }
        }
    }));
    let url_src = url(&src);
    tokio::select! {
        biased;
        _ = rx => {}
        r = db::snapshot::create(&url_src, &opts) => panic!("the snapshot finished before being dropped: {r:?}"),
    }
    let left: Vec<_> = std::fs::read_dir(&dropped_dir).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");

    drop_dbs(&mut conn, &[&src]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_is_consistent_while_another_connection_writes() {
    let Some(mut conn) = server().await else {
        return;
    };
    let src = unique("writes");
    create_db(
        &mut conn,
        &src,
        &[
            "CREATE TABLE a (id INT AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=InnoDB",
            "CREATE TABLE b (id INT AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=InnoDB",
            "INSERT INTO a (v) SELECT seq FROM seq_1_to_2000",
            "INSERT INTO b (v) SELECT seq FROM seq_1_to_2000",
        ],
    )
    .await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let src = src.clone();
        tokio::spawn(async move {
            let mut w = Conn::new(mysql_async::Opts::from_url(&format!("{ROOT}/{src}")).unwrap())
                .await
                .unwrap();
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                // Every transaction adds one row to each table.
                w.query_drop("START TRANSACTION").await.unwrap();
                w.query_drop("INSERT INTO a (v) VALUES (1)").await.unwrap();
                w.query_drop("INSERT INTO b (v) VALUES (1)").await.unwrap();
                w.query_drop("COMMIT").await.unwrap();
                n += 1;
            }
            n
        })
    };
    tokio::task::yield_now().await;
    let out = tempfile::tempdir().unwrap();
    let mut opts = SnapshotOptions::new(out.path());
    opts.threads = 2;
    let mut snaps = Vec::new();
    for _ in 0..3 {
        snaps.push(db::snapshot::create(&url(&src), &opts).await.unwrap().1);
    }
    stop.store(true, Ordering::Relaxed);
    let commits = writer.await.unwrap();
    assert!(commits > 0, "the writer never committed");
    for m in snaps {
        let c = db::snapshot::row_counts(&m);
        assert_eq!(c[&format!("{src}.a")], c[&format!("{src}.b")], "{c:?}");
    }
    drop_dbs(&mut conn, &[&src]).await;
}

/// The value of the evidence labelled `label`.
fn evidence_of(o: &escola_runbook_core::Outcome, label: &str) -> String {
    o.evidence
        .iter()
        .find(|e| e.label == label)
        .map(|e| e.value.clone())
        .unwrap_or_default()
}

fn ctx_for(db: &str) -> Ctx {
    let mut secrets = Secrets::new();
    secrets.insert(
        "database_url",
        Secret::new(format!("mysql://root:@127.0.0.1:3306/{db}")),
    );
    Ctx::standalone(Environment::new("test"), secrets)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runbook_checks_measure_migrations_backlog_and_snapshot() {
    let Some(mut conn) = server().await else {
        return;
    };
    let src = unique("checks");
    create_db(
        &mut conn,
        &src,
        &[
            "CREATE TABLE doctrine_migration_versions (version VARCHAR(191) PRIMARY KEY, executed_at DATETIME NULL, execution_time INT NULL)",
            r"INSERT INTO doctrine_migration_versions VALUES ('DoctrineMigrations\\Version20240101000000', NOW(), 10), ('DoctrineMigrations\\Version20250301120000', NOW(), 12)",
            "CREATE TABLE sync_mutations (id INT AUTO_INCREMENT PRIMARY KEY, status VARCHAR(10), created_at DATETIME)",
            "INSERT INTO sync_mutations (status, created_at) VALUES ('pending', NOW() - INTERVAL 90 SECOND), ('pending', NOW()), ('done', NOW())",
            "CREATE TABLE eventos (id INT PRIMARY KEY, nome VARCHAR(20))",
        ],
    )
    .await;
    let ctx = ctx_for(&src);

    let ok = MigrationsCheck::default()
        .expected_version("Version20250301120000")
        .columns(["sync_mutations.status", "eventos.nome"])
        .run(&ctx)
        .await;
    assert_eq!(ok.status, Status::Passed, "{ok:?}");
    assert_eq!(ok.values["db.rows.sync_mutations"], serde_json::json!(3));
    let after = MigrationsCheck::default()
        .run(
            &ctx.clone()
                .with_value("db.rows.sync_mutations", serde_json::json!(5)),
        )
        .await;
    let rows_ev = after
        .evidence
        .iter()
        .find(|e| e.label == "rows in sync_mutations")
        .unwrap();
    assert_eq!(rows_ev.value, "3 (before: 5, change -2)");
    let behind = MigrationsCheck::default()
        .expected_version("Version20260101000000")
        .run(&ctx)
        .await;
    assert_eq!(behind.status, Status::Failed);
    assert!(
        behind.summary.contains("Version20260101000000"),
        "{}",
        behind.summary
    );
    assert!(
        behind.summary.contains("Version20250301120000"),
        "{}",
        behind.summary
    );
    conn.query_drop(format!("CREATE DATABASE `{src}_empty`"))
        .await
        .unwrap();
    conn.query_drop(format!(
        "CREATE TABLE `{src}_empty`.doctrine_migration_versions LIKE `{src}`.doctrine_migration_versions"
    ))
    .await
    .unwrap();
    let empty = MigrationsCheck::default()
        .tables(Vec::<String>::new())
        .run(&ctx_for(&format!("{src}_empty")))
        .await;
    drop_dbs(&mut conn, &[&format!("{src}_empty")]).await;
    assert_eq!(empty.status, Status::Failed, "{empty:?}");
    assert!(
        empty.summary.contains("no applied migration"),
        "{}",
        empty.summary
    );
    let missing = MigrationsCheck::default()
        .tables(["sync_mutations", "eventos", "nao_existe"])
        .run(&ctx)
        .await;
    assert_eq!(missing.status, Status::Failed);
    assert!(missing.summary.contains("nao_existe"));

    let backlog = SyncBacklogCheck::new("status = 'pending'", 5)
        .age_column("created_at", Some(3600))
        .run(&ctx)
        .await;
    assert_eq!(backlog.status, Status::Passed, "{backlog:?}");
    assert_eq!(backlog.values["sync.backlog"], serde_json::json!(2));
    let oldest = backlog.values["sync.backlog_oldest_seconds"]
        .as_i64()
        .unwrap();
    assert!((89..3600).contains(&oldest), "{oldest}");
    let over = SyncBacklogCheck::new("status = 'pending'", 1)
        .run(&ctx)
        .await;
    assert_eq!(over.status, Status::Failed);
    assert!(
        over.summary.contains("2 pending rows, limit <= 1"),
        "{}",
        over.summary
    );
    let bad = SyncBacklogCheck::new("no_such_column = 1", 1)
        .run(&ctx)
        .await;
    assert_eq!(bad.status, Status::CheckError);

    let out = tempfile::tempdir().unwrap();
    let snap = DbSnapshotCheck::new(out.path()).run(&ctx).await;
    assert_eq!(snap.status, Status::Passed, "{snap:?}");
    assert!(DbSnapshotCheck::new(out.path()).describe().mutates);
    let path = snap.values["snapshot.path"].as_str().unwrap();
    let report = db::verify(Path::new(path), None).unwrap();
    let ev = |l: &str| {
        snap.evidence
            .iter()
            .find(|e| e.label == l)
            .unwrap()
            .value
            .clone()
    };
    assert_eq!(ev("manifest sha256"), report.manifest_sha256);
    assert!(ev("rows per table").contains(&format!("{src}.sync_mutations: 3")));

    // No proven snapshot yet; then one taken with its restore test.
    let fresh = SnapshotFreshCheck::new(out.path(), std::time::Duration::from_secs(3600));
    assert_eq!(fresh.run(&ctx).await.status, Status::Failed);
    let proven = DbSnapshotCheck::new(out.path())
        .restore_test(true)
        .run(&ctx)
        .await;
    assert_eq!(proven.status, Status::Passed, "{proven:?}");
    assert_eq!(proven.values["snapshot.verified"], serde_json::json!(true));
    let fresh = fresh.run(&ctx).await;
    assert_eq!(fresh.status, Status::Passed, "{fresh:?}");
    assert_eq!(
        evidence_of(&fresh, "snapshot"),
        proven.values["snapshot.path"].as_str().unwrap()
    );

    drop_dbs(&mut conn, &[&src]).await;
}

#[tokio::test]
async fn credentials_never_appear_in_outcomes() {
    let mut secrets = Secrets::new();
    secrets.insert(
        "database_url",
        Secret::new("mysql://app:hunter2-pw@127.0.0.1:1/escola"),
    );
    let ctx = Ctx::standalone(Environment::new("test"), secrets);
    let out = tempfile::tempdir().unwrap();
    let checks: Vec<Box<dyn Check>> = vec![
        Box::new(MigrationsCheck::default()),
        Box::new(SyncBacklogCheck::new("1=1", 1)),
        Box::new(DbSnapshotCheck::new(out.path())),
    ];
    for c in checks {
        let o = c.run(&ctx).await;
        assert_eq!(o.status, Status::CheckError, "{o:?}");
        let text = serde_json::to_string(&o).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!text.contains("app:"), "{text}");
    }
    let missing = MigrationsCheck::default()
        .run(&Ctx::standalone(Environment::new("t"), Secrets::new()))
        .await;
    assert_eq!(missing.status, Status::CheckError);
    assert!(missing.summary.contains("database_url"));
}

/// Whether the `age` binary runs; skips (or, with
/// ESCOLA_REQUIRE_SERVICES=1, fails) when it does not.
fn age_binary() -> bool {
    match Command::new("age").arg("--version").output() {
        Ok(o) if o.status.success() => true,
        other => {
            if std::env::var("ESCOLA_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("the age binary is required (ESCOLA_REQUIRE_SERVICES=1): {other:?}");
            }
            eprintln!("skipping: the age binary is not installed (apt-get install age)");
            false
        }
    }
}

/// A fresh age identity in `dir/name` (mode 600), and its recipient.
fn age_key(dir: &Path, name: &str) -> (std::path::PathBuf, db::Recipient) {
    use age::secrecy::ExposeSecret;
    use std::os::unix::fs::PermissionsExt;
    let id = age::x25519::Identity::generate();
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!("# test key\n{}\n", id.to_string().expose_secret()),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    (path, id.to_public().to_string().parse().unwrap())
}

/// `age -d -i KEY FILE | zstd -dc` for every file of one source database,
/// in manifest order, into `target`: the stock path.
fn stock_age_restore(dir: &Path, manifest: &db::Manifest, key: &Path, target: &str) {
    let status = Command::new("mariadb")
        .args(["-uroot", "-h127.0.0.1", "-e"])
        .arg(format!("CREATE DATABASE `{target}` CHARACTER SET utf8mb4"))
        .status()
        .unwrap();
    assert!(status.success());
    let files: Vec<String> = manifest
        .files
        .iter()
        .map(|f| format!("'{}'", dir.join(&f.name).display()))
        .collect();
    let script = format!(
        "set -e; for f in {}; do age -d -i '{}' \"$f\" | zstd -dc; done | mariadb -uroot -h127.0.0.1 '{target}'",
        files.join(" "),
        key.display()
    );
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    assert!(
        out.status.success(),
        "age | zstd | mariadb: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The tricky schema, plus a latin1 MyISAM table.
fn tricky_schema() -> Vec<&'static str> {
    let mut stmts = SCHEMA.to_vec();
    stmts.extend([
        "CREATE TABLE l1_legacy (id INT PRIMARY KEY, t VARCHAR(20), b TEXT) ENGINE=MyISAM DEFAULT CHARSET=latin1",
        "INSERT INTO l1_legacy VALUES (1, 'ol\u{e1} \u{e7}', 'caf\u{e9}\\0'), (2, '', NULL)",
    ]);
    stmts
}

async fn schema_exists(conn: &mut Conn, db: &str) -> bool {
    let found: Option<String> = conn
        .exec_first(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
            (db,),
        )
        .await
        .unwrap();
    found.is_some()
}

/// Scratch databases of restore tests run by this process.
async fn scratch_left(conn: &mut Conn) -> Vec<String> {
    conn.exec(
        "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ?",
        (format!(
            "escola\\_restore\\_test\\_%\\_{}\\_%",
            std::process::id()
        ),),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_snapshot_restores_through_ours_and_the_stock_age_path() {
    if !age_binary() {
        return;
    }
    let Some(mut conn) = server().await else {
        return;
    };
    let src = unique("sealed");
    let (ours, stock, never) = (unique("ours"), unique("stock"), unique("never"));
    create_db(&mut conn, &src, &tricky_schema()).await;
    let out = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let (key, recipient) = age_key(keys.path(), "key.txt");
    let (other_key, _) = age_key(keys.path(), "other.txt");
    let (dir, manifest) =
        tricky_snapshot(&mut conn, &src, out.path(), vec![recipient.clone()]).await;

    // Every file is an age file; the manifest names the recipient and both hashes.
    let enc = manifest.encryption.as_ref().unwrap();
    assert_eq!(enc.recipients, [recipient.as_str()]);
    assert!(manifest.restore_with.contains("age -d"));
    for f in &manifest.files {
        assert!(f.name.ends_with(".sql.zst.age"), "{}", f.name);
        assert!(f.plaintext_sha256.is_some(), "{}", f.name);
        let head = std::fs::read(dir.join(&f.name)).unwrap();
        assert!(head.starts_with(b"age-encryption.org/v1\n"), "{}", f.name);
    }
    let all = manifest.databases[0]
        .tables
        .iter()
        .find(|t| t.name == "all types")
        .unwrap();
    assert_eq!(all.content_checksum.as_deref().map(str::len), Some(64));
    let ids = db::Identities::read(&key).unwrap();
    assert_eq!(db::verify(&dir, None).unwrap().plaintexts, 0);
    let report = db::verify(&dir, Some(&ids)).unwrap();
    assert_eq!(report.plaintexts, manifest.files.len());

    // No key, or the wrong key: a clear error, nothing created.
    let err = db::restore(&dir, &url(&src), &RestoreOptions::new(&never))
        .await
        .unwrap_err();
    assert!(matches!(err, RestoreError::NeedsIdentity { .. }), "{err}");
    let mut wrong = RestoreOptions::new(&never);
    wrong.identities = Some(db::Identities::read(&other_key).unwrap());
    let err = db::restore(&dir, &url(&src), &wrong).await.unwrap_err();
    assert!(
        matches!(
            err,
            RestoreError::Crypt(db::CryptError::WrongIdentity { .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("other.txt"), "{err}");
    assert!(!schema_exists(&mut conn, &never).await);

    // Our restore and the stock path give the same tables.
    let mut with_key = RestoreOptions::new(&ours);
    with_key.identities = Some(ids.clone());
    let restored = db::restore(&dir, &url(&src), &with_key).await;
    let stock_result =
        std::panic::catch_unwind(|| stock_age_restore(&dir, &manifest, &key, &stock));
    restored.unwrap();
    stock_result.unwrap();
    assert_same(&mut conn, &src, &ours).await;
    assert_same(&mut conn, &src, &stock).await;

    // The restore test of an encrypted snapshot passes, and is recorded.
    let test_opts = db::RestoreTestOptions {
        identities: Some(ids.clone()),
        ..Default::default()
    };
    let verified = db::restore_test(&dir, &url(&src), &test_opts)
        .await
        .unwrap();
    assert!(verified.passed, "{verified:#?}");
    assert_eq!(verified.tables.len(), manifest.databases[0].tables.len());
    assert!(scratch_left(&mut conn).await.is_empty());
    assert_eq!(db::last_verified(&dir), Some(verified));
    let listed = db::list(out.path(), true).unwrap();
    assert!(listed[0].encrypted && listed[0].verified.as_ref().unwrap().passed);

    // A flipped byte in a ciphertext is caught without the key; with it,
    // the ciphertext's mismatch is told, not the decryption it breaks.
    flip_a_data_byte(&dir, &manifest);
    let err = db::verify(&dir, Some(&ids)).unwrap_err();
    assert!(
        matches!(err, VerifyError::Mismatch { what: "sha256", .. }),
        "{err}"
    );

    drop_dbs(&mut conn, &[&src, &ours, &stock]).await;
}

/// Rewrites the SQL of the data file of `table` in the snapshot `dir` with
/// `edit`, and re-hashes it in the manifest, as a forger would.
fn rewrite_and_rehash(dir: &Path, table: &str, edit: impl Fn(String) -> String) {
    use sha2::{Digest, Sha256};
    let manifest_path = dir.join(db::snapshot::MANIFEST);
    let mut manifest: db::Manifest =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let entry = manifest
        .files
        .iter_mut()
        .find(|f| f.table.as_deref() == Some(table))
        .unwrap();
    let path = dir.join(&entry.name);
    let sql = zstd::decode_all(std::fs::File::open(&path).unwrap()).unwrap();
    let sql = edit(String::from_utf8(sql).unwrap());
    let compressed = zstd::encode_all(sql.as_bytes(), 3).unwrap();
    std::fs::write(&path, &compressed).unwrap();
    entry.bytes = compressed.len() as u64;
    entry.sql_bytes = sql.len() as u64;
    entry.sha256 = Sha256::digest(&compressed)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    std::fs::write(
        &manifest_path,
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_restore_test_catches_a_data_file_altered_and_rehashed() {
    let Some(mut conn) = server().await else {
        return;
    };
    let src = unique("rehashed");
    create_db(
        &mut conn,
        &src,
        &[
            "CREATE TABLE parent (id INT PRIMARY KEY, name VARCHAR(20)) ENGINE=InnoDB",
            "INSERT INTO parent VALUES (1, 'um'), (2, 'dois')",
            "CREATE TABLE other (id INT PRIMARY KEY) ENGINE=InnoDB",
            "INSERT INTO other VALUES (1)",
        ],
    )
    .await;
    let out = tempfile::tempdir().unwrap();
    let (dir, _) = db::snapshot::create(&url(&src), &SnapshotOptions::new(out.path()))
        .await
        .unwrap();
    let opts = db::RestoreTestOptions::default();
    let first = db::restore_test(&dir, &url(&src), &opts).await.unwrap();
    assert!(first.passed, "{first:#?}");

    // Alter a value in the data file of `parent`, and re-hash it in the
    // manifest: every file then matches its manifest entry.
    rewrite_and_rehash(&dir, "parent", |sql| sql.replace("'dois'", "'tres'"));
    db::verify(&dir, None).expect("the re-hashed file matches its manifest");

    let second = db::restore_test(&dir, &url(&src), &opts).await.unwrap();
    assert!(!second.passed);
    let bad: Vec<&str> = second.mismatches().map(|t| t.table.as_str()).collect();
    assert_eq!(bad, [format!("{src}.parent")]);
    let parent = second.mismatches().next().unwrap();
    assert_eq!(
        (parent.expected_rows, parent.restored_rows),
        (2, 2),
        "same rows, other content"
    );
    assert_eq!(db::last_verified(&dir), Some(second));
    assert!(scratch_left(&mut conn).await.is_empty());

    // A file the server refuses: the snapshot does not restore, and that
    // is the recorded verdict (no server message in it).
    rewrite_and_rehash(&dir, "other", |sql| {
        sql.replace("INSERT INTO", "INSERT INTOO")
    });
    let third = db::restore_test(&dir, &url(&src), &opts).await.unwrap();
    assert!(!third.passed);
    let why = third.restore_failed.as_deref().unwrap();
    assert!(why.contains("other.sql.zst, statement"), "{why}");
    assert!(!why.contains("syntax"), "{why}");
    assert_eq!(db::last_verified(&dir), Some(third));
    assert!(scratch_left(&mut conn).await.is_empty());

    drop_dbs(&mut conn, &[&src]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_auto_increment_table_gets_its_keys_while_its_last_chunks_load() {
    let Some(mut conn) = server().await else {
        return;
    };
    let (src, restored) = (unique("fila"), unique("fila_r"));
    create_db(
        &mut conn,
        &src,
        &[
            "CREATE TABLE fila (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, \
             status VARCHAR(10) NOT NULL, device VARCHAR(20) NOT NULL, at DATETIME(6) NOT NULL, \
             KEY (status, at), KEY (device)) ENGINE=InnoDB",
            "INSERT INTO fila (status, device, at) SELECT IF(seq % 7 = 0, 'pending', 'done'), \
             CONCAT('device-', seq % 97), '2026-01-01' + INTERVAL seq SECOND FROM seq_1_to_6000",
            "DELETE FROM fila WHERE id % 11 = 0",
        ],
    )
    .await;
    let out = tempfile::tempdir().unwrap();
    let mut opts = SnapshotOptions::new(out.path());
    opts.chunk_rows = 1000;
    opts.statement_bytes = 4096;
    let (dir, manifest) = db::snapshot::create(&url(&src), &opts).await.unwrap();
    let chunks = manifest
        .files
        .iter()
        .filter(|f| f.table.as_deref() == Some("fila"))
        .count();
    assert!(chunks >= 4, "{chunks} chunks");
    // Its chunks load one after the other, and its keys are built online
    // once half of them are in (see `load::Jobs`), beside the rest.
    let mut restore = RestoreOptions::new(&restored);
    restore.threads = 3;
    let report = db::restore(&dir, &url(&src), &restore).await.unwrap();
    assert_eq!(report.deferred_keys, 2, "{report:?}");
    assert_same(&mut conn, &src, &restored).await;
    let checked: Vec<(String, String, String, String)> = conn
        .query(format!("CHECK TABLE `{restored}`.fila EXTENDED"))
        .await
        .unwrap();
    assert_eq!(
        checked.last().map(|c| c.3.as_str()),
        Some("OK"),
        "{checked:?}"
    );
    drop_dbs(&mut conn, &[&src, &restored]).await;
}

/// The files of a snapshot directory, counting how often each one is read
/// to its end.
struct CountedReads {
    dir: db::LocalDir,
    whole: std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, u32>>>,
}

/// A reader of one file of [`CountedReads`].
struct Tally {
    inner: Box<dyn std::io::Read + Send>,
    name: String,
    whole: std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, u32>>>,
    ended: bool,
}

impl std::io::Read for Tally {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() && !self.ended {
            self.ended = true;
            *self
                .whole
                .lock()
                .unwrap()
                .entry(self.name.clone())
                .or_default() += 1;
        }
        Ok(n)
    }
}

impl db::SnapshotFiles for CountedReads {
    fn location(&self) -> std::path::PathBuf {
        self.dir.location()
    }

    fn open(&self, name: &str) -> std::io::Result<Box<dyn std::io::Read + Send>> {
        Ok(Box::new(Tally {
            inner: self.dir.open(name)?,
            name: name.to_owned(),
            whole: self.whole.clone(),
            ended: false,
        }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_test_reads_each_file_twice_however_many_databases() {
    let Some(mut conn) = server().await else {
        return;
    };
    let (one, two) = (unique("reads_a"), unique("reads_b"));
    for db in [&one, &two] {
        create_db(
            &mut conn,
            db,
            &[
                "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20), KEY (v)) ENGINE=InnoDB",
                "INSERT INTO t VALUES (1, 'um'), (2, 'dois'), (3, 'tres')",
                "CREATE VIEW v AS SELECT id FROM t",
            ],
        )
        .await;
    }
    let out = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let (key, recipient) = age_key(keys.path(), "key.txt");
    let mut opts = SnapshotOptions::new(out.path());
    opts.databases = vec![one.clone(), two.clone()];
    opts.encrypt_to = vec![recipient];
    let (dir, manifest) = db::snapshot::create(&url(&one), &opts).await.unwrap();
    assert_eq!(manifest.databases.len(), 2);

    let reported = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = reported.clone();
    let test = db::RestoreTestOptions {
        identities: Some(db::Identities::read(&key).unwrap()),
        on_verified: Some(std::sync::Arc::new(move |r: &db::VerifyReport| {
            seen.lock().unwrap().push((r.files, r.plaintexts));
        })),
        ..Default::default()
    };
    let files = CountedReads {
        dir: db::LocalDir::new(&dir),
        whole: Default::default(),
    };
    let whole = files.whole.clone();
    let verified = db::restore_test_files(std::sync::Arc::new(files), &url(&one), &test)
        .await
        .unwrap();
    assert!(verified.passed, "{verified:#?}");
    assert_eq!(verified.tables.len(), 2);
    // Told once, before the restores, with every plaintext checked.
    let n = manifest.files.len();
    assert_eq!(*reported.lock().unwrap(), [(n, n)]);
    // Each file is read whole once to verify it (ciphertext and plaintext
    // together) and once to load it: not once more per database.
    let whole = whole.lock().unwrap().clone();
    for f in &manifest.files {
        assert_eq!(whole.get(&f.name), Some(&2), "{}: {whole:?}", f.name);
    }
    assert_eq!(whole.get(db::snapshot::MANIFEST), Some(&1), "{whole:?}");
    assert!(scratch_left(&mut conn).await.is_empty());

    drop_dbs(&mut conn, &[&one, &two]).await;
}

/// A journal under `root` of a run `id` whose `db-snapshot` step recorded
/// `snapshot`, finished or not.
fn run_that_took(root: &Path, id: &str, snapshot: &Path, finished: bool) {
    use escola_runbook_core::{
        Event, Outcome, Phase, RunInfo, Runbook, RunbookOutline, SCHEMA_VERSION, Step, Verdict,
    };
    let runbook = Runbook::builder("escola")
        .phase(Phase::new("pre", "Pre").step(Step::manual("db-snapshot", "Snapshot")))
        .build()
        .unwrap();
    let at = chrono::Utc::now();
    let mut events = vec![
        Event::RunStarted {
            schema_version: SCHEMA_VERSION,
            run: RunInfo {
                run_id: id.into(),
                operator: "ana".into(),
                host: "deploy-host".into(),
                environment: Environment::new("production"),
                dry_run: false,
                phases: Vec::new(),
                only: Vec::new(),
                tool_version: "0.1.0".into(),
                started_at: at,
                source: None,
                config: None,
            },
            runbook: RunbookOutline::of(&runbook),
        },
        Event::StepFinished {
            phase: "pre".into(),
            step: "db-snapshot".into(),
            outcome: Outcome::passed("snapshot written").with_value(
                "snapshot.path",
                serde_json::json!(snapshot.display().to_string()),
            ),
            attempts: 1,
            elapsed_ms: 1,
            at,
        },
    ];
    if finished {
        events.push(Event::RunFinished {
            verdict: Verdict::Succeeded,
            exit_code: 0,
            at,
            rollback_withheld: None,
        });
    }
    let dir = root.join(id);
    std::fs::create_dir_all(&dir).unwrap();
    let lines: String = events
        .iter()
        .map(|e| format!("{}\n", serde_json::to_string(e).unwrap()))
        .collect();
    std::fs::write(dir.join("journal.jsonl"), lines).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_keeps_the_newest_the_proven_and_what_an_unfinished_run_took() {
    let Some(mut conn) = server().await else {
        return;
    };
    let src = unique("prune");
    create_db(
        &mut conn,
        &src,
        &[
            "CREATE TABLE t (id INT PRIMARY KEY)",
            "INSERT INTO t VALUES (1)",
        ],
    )
    .await;
    let out = tempfile::tempdir().unwrap();
    let mut snaps = Vec::new();
    for _ in 0..5 {
        let (dir, _) = db::snapshot::create(&url(&src), &SnapshotOptions::new(out.path()))
            .await
            .unwrap();
        snaps.push(dir);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let proven = db::restore_test(&snaps[1], &url(&src), &Default::default())
        .await
        .unwrap();
    assert!(proven.passed);
    let runs = out.path().join("runs");
    run_that_took(&runs, "r-open", &snaps[0], false);
    run_that_took(&runs, "r-done", &snaps[2], true);
    let keep = db::Retention {
        keep_last: 1,
        keep_for: None,
    };

    let planned = db::prune(out.path(), &runs, keep, true).unwrap();
    let why = |decisions: &[db::Decision], n: usize| {
        decisions
            .iter()
            .find(|d| d.path == snaps[n])
            .map(|d| d.kept_because.join("; "))
            .unwrap()
    };
    assert_eq!(why(&planned, 4), "one of the newest 1");
    assert_eq!(why(&planned, 3), "");
    assert_eq!(why(&planned, 2), "", "its run has finished");
    assert_eq!(why(&planned, 1), "the newest that passed its restore test");
    assert_eq!(
        why(&planned, 0),
        "taken by run r-open, which has not finished"
    );
    assert!(
        snaps.iter().all(|s| s.exists()),
        "a dry run deletes nothing"
    );

    let done = db::prune(out.path(), &runs, keep, false).unwrap();
    assert_eq!(done, planned);
    let left: Vec<bool> = snaps.iter().map(|s| s.exists()).collect();
    assert_eq!(left, [true, true, false, false, true]);

    drop_dbs(&mut conn, &[&src]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loss_estimate_counts_what_a_restore_would_lose_per_table() {
    let Some(mut conn) = server().await else {
        return;
    };
    let src = unique("loss");
    create_db(
        &mut conn,
        &src,
        &[
            "CREATE TABLE sync_mutations (id INT AUTO_INCREMENT PRIMARY KEY, status VARCHAR(10), \
             updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6))",
            "INSERT INTO sync_mutations (status) VALUES ('pending'), ('pending'), ('done')",
            "CREATE TABLE cidades (codigo INT PRIMARY KEY, nome VARCHAR(20))",
            "INSERT INTO cidades VALUES (1, 'Recife'), (2, 'Olinda')",
            "CREATE TABLE eventos (id BIGINT AUTO_INCREMENT PRIMARY KEY, nome VARCHAR(20))",
            "CREATE TABLE legado (id INT AUTO_INCREMENT PRIMARY KEY, nota TEXT) ENGINE=MyISAM",
            "INSERT INTO legado (nota) VALUES ('a')",
        ],
    )
    .await;
    let out = tempfile::tempdir().unwrap();
    let (path, manifest) = db::snapshot::create(&url(&src), &SnapshotOptions::new(out.path()))
        .await
        .unwrap();

    // The watermarks, as dumped: auto-increment and on-update columns only;
    // an empty table has no value yet.
    let marks = |table: &str| {
        manifest.databases[0]
            .tables
            .iter()
            .find(|t| t.name == table)
            .unwrap()
            .watermarks
            .iter()
            .map(|w| (w.column.clone(), w.kind, w.max.is_some()))
            .collect::<Vec<_>>()
    };
    use db::snapshot::WatermarkKind::{Inserted, Updated};
    assert_eq!(
        marks("sync_mutations"),
        [
            ("id".into(), Inserted, true),
            ("updated_at".into(), Updated, true)
        ]
    );
    assert_eq!(marks("cidades"), []);
    assert_eq!(marks("eventos"), [("id".into(), Inserted, false)]);
    assert_eq!(marks("legado"), [("id".into(), Inserted, true)]);

    let ctx = ctx_for(&src);
    let check = LossEstimateCheck::new(out.path());
    let untouched = check.run(&ctx).await;
    assert_eq!(untouched.status, Status::Passed, "{untouched:?}");
    assert!(
        untouched
            .summary
            .contains("loses nothing seen: none of its 4 tables changed since"),
        "{}",
        untouched.summary
    );
    assert_eq!(
        evidence_of(&untouched, "snapshot"),
        path.display().to_string()
    );

    exec_all(
        &mut conn,
        &[
            "INSERT INTO sync_mutations (status) VALUES ('pending'), ('pending')",
            "UPDATE sync_mutations SET status = 'done' WHERE id = 1",
            "INSERT INTO cidades VALUES (3, 'Paulista')",
            "INSERT INTO eventos (nome) VALUES ('a'), ('b'), ('c')",
            "DROP TABLE legado",
        ],
    )
    .await;
    let after = check.run(&ctx).await;
    assert_eq!(after.status, Status::Warned, "{after:?}");
    let line = |table: &str| evidence_of(&after, &format!("{src}.{table}"));
    assert_eq!(
        line("sync_mutations"),
        "2 rows inserted since, 3 inserted or updated since; 3 rows then, 5 now"
    );
    assert_eq!(line("eventos"), "3 rows inserted since; 0 rows then, 3 now");
    assert_eq!(
        line("cidades"),
        "no watermark column (updates in place are not seen); 2 rows then, 3 now"
    );
    assert_eq!(
        line("legado"),
        "the table no longer exists (1 row in the snapshot)"
    );
    assert!(
        after.summary.contains("loses at least 8 rows written since, in 4 of 4 tables: cidades 1, eventos 3, legado 1, sync_mutations 3"),
        "{}",
        after.summary
    );
    // The snapshot this run took wins over the newest in the directory.
    let elsewhere = LossEstimateCheck::new(tempfile::tempdir().unwrap().path())
        .run(&ctx.clone().with_value(
            "snapshot.path",
            serde_json::json!(path.display().to_string()),
        ))
        .await;
    assert_eq!(elsewhere.status, Status::Warned, "{elsewhere:?}");
    // No snapshot: a check error that says so.
    let none = LossEstimateCheck::new(tempfile::tempdir().unwrap().path())
        .run(&ctx)
        .await;
    assert_eq!(none.status, Status::CheckError, "{none:?}");
    assert!(
        none.summary.contains("no complete snapshot under"),
        "{}",
        none.summary
    );
    drop_dbs(&mut conn, &[&src]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swapped_restore_replaces_the_tables_atomically_and_keeps_the_old_ones() {
    let Some(mut conn) = server().await else {
        return;
    };
    let prod = unique("swap_prod");
    let reference = unique("swap_ref");
    let backup = unique("swap_backup");
    create_db(&mut conn, &prod, &tricky_schema()).await;
    let out = tempfile::tempdir().unwrap();
    let (dir, _) = tricky_snapshot(&mut conn, &prod, out.path(), Vec::new()).await;
    // What the snapshot restores to, for comparison.
    db::restore(&dir, &url(&reference), &RestoreOptions::new(&reference))
        .await
        .unwrap();
    // The bad deploy: rows lost, rows added (a trigger fires), a new table.
    exec_all(
        &mut conn,
        &[
            &format!("DELETE FROM `{prod}`.big WHERE id > 100"),
            &format!("INSERT INTO `{prod}`.parent VALUES (3, 'três')"),
            &format!("CREATE TABLE `{prod}`.stray (id INT PRIMARY KEY)"),
        ],
    )
    .await;
    let before_swap = checksums(&mut conn, &prod).await;

    // A backup database that holds tables is refused before anything.
    create_db(&mut conn, &backup, &["CREATE TABLE keep (id INT)"]).await;
    let mut opts = db::SwapOptions::new(&prod);
    opts.backup_database = Some(backup.clone());
    let refused = db::restore_swapped(&dir, &url(&prod), &opts).await;
    assert!(
        matches!(refused, Err(db::SwapError::BackupNotEmpty(ref b)) if *b == backup),
        "{refused:?}"
    );
    assert_eq!(checksums(&mut conn, &prod).await, before_swap);
    drop_dbs(&mut conn, &[&backup]).await;

    let report = db::restore_swapped(&dir, &url(&prod), &opts).await.unwrap();
    assert!(
        report.proven.iter().all(|p| p.matches()),
        "{:?}",
        report.proven
    );
    assert!(
        report.replaced.contains(&"stray".to_string()),
        "{:?}",
        report.replaced
    );
    assert_eq!(report.triggers, 1, "the snapshot's trigger is back");
    // Production is the snapshot again: rows, checksums, views, triggers,
    // routines, events and foreign keys.
    assert_same(&mut conn, &prod, &reference).await;
    // The replaced tables are kept, as they were.
    let kept = checksums(&mut conn, &backup).await;
    assert_eq!(kept, before_swap);
    // No shadow is left behind.
    let left: Vec<String> = conn
        .query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '%shadow_restore%'")
        .await
        .unwrap();
    assert!(left.is_empty(), "{left:?}");

    // Nothing to swap into: refused, naming the database.
    let missing = unique("swap_missing");
    let err = db::restore_swapped(&dir, &url(&prod), &db::SwapOptions::new(&missing))
        .await
        .unwrap_err();
    assert!(err.to_string().contains(&missing), "{err}");
    drop_dbs(&mut conn, &[&prod, &reference, &backup]).await;
}

/// Off-site copies through a real S3-compatible server (moto's server mode,
/// skipped when it is not installed unless ESCOLA_REQUIRE_SERVICES=1).
#[cfg(feature = "s3")]
mod offsite {
    use std::sync::Arc;

    use escola_runbook_checks::db::offsite::{
        self, OffsiteError, PART_SIZE, PushOptions, SnapshotUrl, Store,
    };
    use escola_runbook_testkit::moto::MotoServer;

    use super::*;

    const PREFIX: &str = "s3://snaps/escola/prod";

    /// moto with the bucket `snaps`, and a store on [`PREFIX`].
    fn store_on(moto: &MotoServer) -> Store {
        moto.create_bucket("snaps").unwrap();
        Store::from_vars(&PREFIX.parse().unwrap(), moto.aws_vars("not-a-real-secret")).unwrap()
    }

    fn name_of(dir: &Path) -> String {
        dir.file_name().unwrap().to_string_lossy().into_owned()
    }

    /// MariaDB and moto, or `None` (the test skips) when one is missing.
    async fn services() -> Option<(Conn, MotoServer)> {
        let conn = server().await?;
        Some((conn, MotoServer::for_test(&[])?))
    }

    /// Writes `body` as the object `key` of the bucket `snaps`, behind the
    /// snapshot code's back.
    async fn tamper(moto: &MotoServer, key: &str, body: &[u8]) {
        use object_store::ObjectStoreExt;
        bucket(moto)
            .put(&key.into(), body.to_vec().into())
            .await
            .unwrap();
    }

    /// Deletes the object `key` of the bucket `snaps`, behind the snapshot
    /// code's back.
    async fn remove(moto: &MotoServer, key: &str) {
        use object_store::ObjectStoreExt;
        bucket(moto).delete(&key.into()).await.unwrap();
    }

    /// The bucket `snaps` of `moto`, as a plain object store.
    fn bucket(moto: &MotoServer) -> object_store::aws::AmazonS3 {
        let mut builder = object_store::aws::AmazonS3Builder::new().with_bucket_name("snaps");
        for (k, v) in moto.aws_vars("not-a-real-secret") {
            builder = builder.with_config(k.to_ascii_lowercase().parse().unwrap(), v);
        }
        builder.build().unwrap()
    }

    /// `n` pseudo-random bytes (xorshift): rows zstd cannot shrink.
    fn noise(seed: u64, n: usize) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn push_list_verify_and_restore_through_an_s3_server() {
        let Some((mut conn, moto)) = services().await else {
            return;
        };
        let (src, dst) = (unique("s3src"), unique("s3dst"));
        create_db(&mut conn, &src, &tricky_schema()).await;
        // A data file larger than a multipart part.
        conn.query_drop("CREATE TABLE blobs (id INT PRIMARY KEY, b LONGBLOB)")
            .await
            .unwrap();
        for i in 0..12u64 {
            conn.exec_drop("INSERT INTO blobs VALUES (?, ?)", (i, noise(i, 1 << 20)))
                .await
                .unwrap();
        }
        let tmp = tempfile::tempdir().unwrap();
        let (dir, manifest) = tricky_snapshot(&mut conn, &src, tmp.path(), Vec::new()).await;
        assert!(
            manifest.files.iter().any(|f| f.bytes > PART_SIZE as u64),
            "a file goes up in parts"
        );
        let (_, local_sha) = db::restore::read_manifest(&dir).unwrap();
        let store = store_on(&moto);

        let pushed = offsite::push(&dir, &store, &PushOptions::default())
            .await
            .unwrap();
        let name = name_of(&dir);
        assert_eq!(pushed.url.to_string(), format!("{PREFIX}/{name}"));
        assert_eq!(
            (pushed.uploaded, pushed.skipped),
            (manifest.files.len() + 1, 0)
        );
        assert_eq!(pushed.manifest_sha256, local_sha);
        // A second push finds everything there and matching.
        let again = offsite::push(&dir, &store, &PushOptions::default())
            .await
            .unwrap();
        assert_eq!(
            (again.uploaded, again.skipped),
            (0, manifest.files.len() + 1)
        );

        let listed = offsite::list(&store).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].status, SnapshotStatus::Complete);
        assert_eq!(listed[0].path.file_name().unwrap().to_string_lossy(), name);
        assert_eq!(listed[0].rows, manifest.total_rows);
        assert_eq!(listed[0].finished_at, Some(manifest.finished_at));
        let manifest_len = std::fs::metadata(dir.join("manifest.json")).unwrap().len();
        assert_eq!(listed[0].bytes, manifest.total_bytes + manifest_len);

        let files = store.join(&name).snapshot().await.unwrap();
        let verified = db::verify_files(files.clone(), None).await.unwrap();
        assert_eq!(verified.manifest_sha256, local_sha);
        assert_eq!(verified.bytes, manifest.total_bytes);

        let restored = db::restore_from(files, &url(&src), &RestoreOptions::new(&dst))
            .await
            .unwrap();
        assert_eq!(restored.rows, manifest.total_rows);
        assert_same(&mut conn, &src, &dst).await;
        drop_dbs(&mut conn, &[&src, &dst]).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_interrupted_push_is_listed_incomplete_and_restore_refuses_it() {
        let Some((mut conn, moto)) = services().await else {
            return;
        };
        let (src, dst) = (unique("s3cut"), unique("s3cutdst"));
        create_db(&mut conn, &src, SCHEMA).await;
        let tmp = tempfile::tempdir().unwrap();
        let (dir, manifest) = tricky_snapshot(&mut conn, &src, tmp.path(), Vec::new()).await;
        let store = store_on(&moto);

        // Stopped once the first object is up.
        let mut opts = PushOptions::default();
        let cancel = opts.cancel.clone();
        opts.on_object = Some(Arc::new(move |_| cancel.cancel()));
        let err = offsite::push(&dir, &store, &opts).await.unwrap_err();
        assert!(matches!(err, OffsiteError::Cancelled(_)), "{err}");
        assert!(err.to_string().contains("push it again"), "{err}");

        let listed = offsite::list(&store).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].status, SnapshotStatus::Incomplete);
        let remote = store.join(&name_of(&dir));
        let files = remote.snapshot().await.unwrap();
        let err = db::restore_from(files.clone(), &url(&src), &RestoreOptions::new(&dst))
            .await
            .unwrap_err();
        match &err {
            RestoreError::Verify(VerifyError::NoManifest(at)) => {
                assert_eq!(at.display().to_string(), remote.url().to_string());
            }
            other => panic!("{other}"),
        }
        assert!(err.to_string().contains("incomplete"), "{err}");
        assert!(!schema_exists(&mut conn, &dst).await, "nothing written");
        assert!(matches!(
            db::verify_files(files, None).await,
            Err(VerifyError::NoManifest(_))
        ));

        // Pushed again: the object already up is not sent twice.
        let done = offsite::push(&dir, &store, &PushOptions::default())
            .await
            .unwrap();
        assert_eq!((done.uploaded, done.skipped), (manifest.files.len(), 1));
        let listed = offsite::list(&store).await.unwrap();
        assert_eq!(listed[0].status, SnapshotStatus::Complete);
        drop_dbs(&mut conn, &[&src]).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn verify_names_a_tampered_object_and_a_push_repairs_it() {
        let Some((mut conn, moto)) = services().await else {
            return;
        };
        let src = unique("s3tamper");
        create_db(&mut conn, &src, SCHEMA).await;
        let tmp = tempfile::tempdir().unwrap();
        let (dir, manifest) = tricky_snapshot(&mut conn, &src, tmp.path(), Vec::new()).await;
        drop_dbs(&mut conn, &[&src]).await;
        let store = store_on(&moto);
        offsite::push(&dir, &store, &PushOptions::default())
            .await
            .unwrap();
        let name = name_of(&dir);
        let data = manifest.files.iter().find(|f| f.table.is_some()).unwrap();
        let key = format!("escola/prod/{name}/{}", data.name);
        let mut bytes = std::fs::read(dir.join(&data.name)).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x01;
        tamper(&moto, &key, &bytes).await;

        let files = store.join(&name).snapshot().await.unwrap();
        let err = db::verify_files(files.clone(), None).await.unwrap_err();
        match &err {
            VerifyError::Mismatch { path, what, .. } => {
                assert_eq!(*what, "sha256");
                assert_eq!(
                    path.display().to_string(),
                    format!("{PREFIX}/{name}/{}", data.name)
                );
            }
            other => panic!("{other}"),
        }
        // A resized object shows in the listing too.
        tamper(&moto, &key, &bytes[..mid]).await;
        let listed = offsite::list(&store).await.unwrap();
        assert!(
            matches!(&listed[0].status, SnapshotStatus::Damaged(why) if why.contains(&data.name)),
            "{:?}",
            listed[0].status
        );

        // Pushing again replaces exactly that object.
        let repaired = offsite::push(&dir, &store, &PushOptions::default())
            .await
            .unwrap();
        assert_eq!(
            (repaired.uploaded, repaired.skipped),
            (1, manifest.files.len())
        );
        db::verify_files(files, None).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_encrypted_snapshot_is_pushed_verified_and_restored() {
        let Some((mut conn, moto)) = services().await else {
            return;
        };
        let (src, dst) = (unique("s3age"), unique("s3agedst"));
        create_db(&mut conn, &src, &tricky_schema()).await;
        let tmp = tempfile::tempdir().unwrap();
        let (key, recipient) = age_key(tmp.path(), "key.txt");
        let out = tmp.path().join("snaps");
        let (dir, manifest) = tricky_snapshot(&mut conn, &src, &out, vec![recipient]).await;
        let store = store_on(&moto);
        offsite::push(&dir, &store, &PushOptions::default())
            .await
            .unwrap();
        let listed = offsite::list(&store).await.unwrap();
        assert!(listed[0].encrypted);

        let files = store.join(&name_of(&dir)).snapshot().await.unwrap();
        let ids = db::Identities::read(&key).unwrap();
        let verified = db::verify_files(files.clone(), Some(ids.clone()))
            .await
            .unwrap();
        assert_eq!(verified.plaintexts, manifest.files.len());
        let err = db::restore_from(files.clone(), &url(&src), &RestoreOptions::new(&dst))
            .await
            .unwrap_err();
        assert!(matches!(err, RestoreError::NeedsIdentity { .. }), "{err}");
        let mut opts = RestoreOptions::new(&dst);
        opts.identities = Some(ids);
        db::restore_from(files, &url(&src), &opts).await.unwrap();
        assert_same(&mut conn, &src, &dst).await;
        drop_dbs(&mut conn, &[&src, &dst]).await;
    }

    /// `n` snapshots of a one-table database `src`, oldest first.
    async fn snapshots(src: &str, out: &Path, n: usize) -> Vec<std::path::PathBuf> {
        let mut snaps = Vec::new();
        for _ in 0..n {
            let (dir, _) = db::snapshot::create(&url(src), &SnapshotOptions::new(out))
                .await
                .unwrap();
            snaps.push(dir);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        snaps
    }

    async fn push_all(snaps: &[std::path::PathBuf], store: &Store) {
        for dir in snaps {
            offsite::push(dir, store, &PushOptions::default())
                .await
                .unwrap();
        }
    }

    async fn one_table_db(conn: &mut Conn, prefix: &str) -> String {
        let src = unique(prefix);
        create_db(
            conn,
            &src,
            &[
                "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10))",
                "INSERT INTO t VALUES (1, 'um'), (2, 'dois')",
            ],
        )
        .await;
        src
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_remote_restore_test_is_recorded_on_the_store_and_catches_a_rehashed_file() {
        let Some((mut conn, moto)) = services().await else {
            return;
        };
        let src = one_table_db(&mut conn, "s3proof").await;
        let out = tempfile::tempdir().unwrap();
        let dir = snapshots(&src, out.path(), 1).await.remove(0);
        let store = store_on(&moto);
        offsite::push(&dir, &store, &PushOptions::default())
            .await
            .unwrap();
        let remote = store.join(&name_of(&dir));
        let opts = db::RestoreTestOptions::default();

        let passed = offsite::restore_test(&remote, &url(&src), &opts)
            .await
            .unwrap();
        assert!(passed.passed, "{passed:#?}");
        assert_eq!(passed.tables.len(), 1);
        assert!(
            db::last_verified(&dir).is_none(),
            "the local copy untouched"
        );
        let listed = offsite::list(&store).await.unwrap();
        assert_eq!(listed[0].verified.as_ref(), Some(&passed));
        assert!(scratch_left(&mut conn).await.is_empty());

        // Altered and re-hashed locally, pushed again: every object matches
        // its manifest, and the remote restore test catches the table.
        rewrite_and_rehash(&dir, "t", |sql| sql.replace("'dois'", "'tres'"));
        offsite::push(&dir, &store, &PushOptions::default())
            .await
            .unwrap();
        db::verify_files(remote.snapshot().await.unwrap(), None)
            .await
            .unwrap();
        let failed = offsite::restore_test(&remote, &url(&src), &opts)
            .await
            .unwrap();
        assert!(!failed.passed);
        let bad: Vec<&str> = failed.mismatches().map(|t| t.table.as_str()).collect();
        assert_eq!(bad, [format!("{src}.t")]);
        let listed = offsite::list(&store).await.unwrap();
        assert_eq!(listed[0].verified.as_ref(), Some(&failed));
        assert!(scratch_left(&mut conn).await.is_empty());
        drop_dbs(&mut conn, &[&src]).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_remote_prune_keeps_the_newest_the_proven_and_what_an_unfinished_run_took() {
        let Some((mut conn, moto)) = services().await else {
            return;
        };
        let src = one_table_db(&mut conn, "s3prune").await;
        let out = tempfile::tempdir().unwrap();
        let snaps = snapshots(&src, out.path(), 6).await;
        let store = store_on(&moto);
        push_all(&snaps, &store).await;
        // Proven on the store only.
        let proven = offsite::restore_test(
            &store.join(&name_of(&snaps[1])),
            &url(&src),
            &Default::default(),
        )
        .await
        .unwrap();
        assert!(proven.passed);
        // An interrupted push (no manifest) and a damaged copy.
        let (incomplete, damaged) = (name_of(&snaps[2]), name_of(&snaps[3]));
        remove(&moto, &format!("escola/prod/{incomplete}/manifest.json")).await;
        let manifest = db::restore::read_manifest(&snaps[3]).unwrap().0;
        let data = manifest.files.iter().find(|f| f.table.is_some()).unwrap();
        tamper(
            &moto,
            &format!("escola/prod/{damaged}/{}", data.name),
            b"cut",
        )
        .await;
        // The run that took snaps[0] (its local path) has not finished.
        let runs = out.path().join("runs");
        run_that_took(&runs, "r-open", &snaps[0], false);
        run_that_took(&runs, "r-done", &snaps[4], true);
        let keep = db::Retention {
            keep_last: 1,
            keep_for: None,
        };
        let listed_names = |listed: &[db::SnapshotListing]| -> Vec<String> {
            let mut names: Vec<String> = listed.iter().map(|l| name_of(&l.path)).collect();
            names.sort();
            names
        };
        let before = offsite::list(&store).await.unwrap();
        assert_eq!(before.len(), 6);

        let dry = offsite::PruneOptions {
            dry_run: true,
            ..Default::default()
        };
        let planned = offsite::prune(&store, &runs, keep, &dry).await.unwrap();
        let why = |decisions: &[db::Decision], n: usize| {
            decisions
                .iter()
                .find(|d| name_of(&d.path) == name_of(&snaps[n]))
                .map(|d| d.kept_because.join("; "))
                .unwrap()
        };
        assert_eq!(why(&planned, 5), "one of the newest 1");
        assert_eq!(why(&planned, 4), "", "its run has finished");
        assert!(
            why(&planned, 3).starts_with("damaged"),
            "{}",
            why(&planned, 3)
        );
        assert!(why(&planned, 2).starts_with("incomplete"));
        assert_eq!(why(&planned, 1), "the newest that passed its restore test");
        assert_eq!(
            why(&planned, 0),
            "taken by run r-open, which has not finished"
        );
        assert_eq!(
            listed_names(&offsite::list(&store).await.unwrap()),
            listed_names(&before),
            "a dry run deletes nothing"
        );

        let told = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = told.clone();
        let opts = offsite::PruneOptions {
            dry_run: false,
            on_deleted: Some(Arc::new(move |d: &db::Decision| {
                seen.lock().unwrap().push(name_of(&d.path));
            })),
        };
        let done = offsite::prune(&store, &runs, keep, &opts).await.unwrap();
        assert_eq!(done, planned);
        assert_eq!(*told.lock().unwrap(), [name_of(&snaps[4])]);
        let after = offsite::list(&store).await.unwrap();
        let mut kept: Vec<String> = [0, 1, 2, 3, 5]
            .iter()
            .map(|&n| name_of(&snaps[n]))
            .collect();
        kept.sort();
        assert_eq!(
            listed_names(&after),
            kept,
            "no object of the deleted one is left"
        );
        drop_dbs(&mut conn, &[&src]).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_remote_prune_cut_short_says_what_it_deleted_and_what_not() {
        let Some((mut conn, moto)) = services().await else {
            return;
        };
        let src = one_table_db(&mut conn, "s3prunecut").await;
        let out = tempfile::tempdir().unwrap();
        let snaps = snapshots(&src, out.path(), 3).await;
        drop_dbs(&mut conn, &[&src]).await;
        let store = store_on(&moto);
        push_all(&snaps, &store).await;
        // The server goes away once the first snapshot is deleted.
        let server = Arc::new(std::sync::Mutex::new(Some(moto)));
        let gone = server.clone();
        let opts = offsite::PruneOptions {
            dry_run: false,
            on_deleted: Some(Arc::new(move |_: &db::Decision| {
                gone.lock().unwrap().take();
            })),
        };
        let keep = db::Retention {
            keep_last: 1,
            keep_for: None,
        };
        let runs = out.path().join("no-runs");
        let err = offsite::prune(&store, &runs, keep, &opts)
            .await
            .unwrap_err();
        match &err {
            OffsiteError::PruneStopped {
                url,
                manifest_deleted,
                deleted,
                ..
            } => {
                assert_eq!(url.to_string(), format!("{PREFIX}/{}", name_of(&snaps[0])));
                assert!(!manifest_deleted);
                assert_eq!(deleted.len(), 1);
                assert_eq!(name_of(&deleted[0]), name_of(&snaps[1]));
            }
            other => panic!("{other}"),
        }
        let text = err.to_string();
        assert!(text.contains("nothing of it was deleted"), "{text}");
        assert!(
            text.contains(&format!("deleted before it: {}", name_of(&snaps[1]))),
            "{text}"
        );
        assert!(server.lock().unwrap().is_none(), "the server was stopped");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_remote_prune_cut_short_is_finished_by_the_next() {
        let Some((mut conn, moto)) = services().await else {
            return;
        };
        let src = one_table_db(&mut conn, "s3prunerest").await;
        let out = tempfile::tempdir().unwrap();
        let snaps = snapshots(&src, out.path(), 2).await;
        drop_dbs(&mut conn, &[&src]).await;
        let store = store_on(&moto);
        push_all(&snaps, &store).await;
        // What a prune stopped after deleting the manifest leaves behind.
        let cut = name_of(&snaps[0]);
        tamper(
            &moto,
            &format!("escola/prod/{cut}/{}", db::PRUNING),
            b"begun",
        )
        .await;
        remove(&moto, &format!("escola/prod/{cut}/manifest.json")).await;
        let listed = offsite::list(&store).await.unwrap();
        let status = |name: &str| {
            listed
                .iter()
                .find(|l| name_of(&l.path) == name)
                .map(|l| l.status.clone())
        };
        assert_eq!(status(&cut), Some(db::SnapshotStatus::BeingDeleted));
        let keep_all = db::Retention {
            keep_last: 10,
            keep_for: Some(std::time::Duration::from_secs(3600)),
        };
        let opts = offsite::PruneOptions {
            dry_run: false,
            on_deleted: None,
        };
        let runs = out.path().join("no-runs");
        let decisions = offsite::prune(&store, &runs, keep_all, &opts)
            .await
            .unwrap();
        let deleted: Vec<String> = decisions
            .iter()
            .filter(|d| d.kept_because.is_empty())
            .map(|d| name_of(&d.path))
            .collect();
        assert_eq!(deleted, std::slice::from_ref(&cut));
        let left = offsite::list(&store).await.unwrap();
        assert_eq!(left.len(), 1, "{left:?}");
        assert_eq!(name_of(&left[0].path), name_of(&snaps[1]));
        assert_eq!(left[0].status, db::SnapshotStatus::Complete);
        // Nothing of the cut one is left, its marker neither.
        use object_store::ObjectStore;
        let prefix = object_store::path::Path::from(format!("escola/prod/{cut}"));
        let objects: Vec<_> =
            futures_util::TryStreamExt::try_collect(bucket(&moto).list(Some(&prefix)))
                .await
                .unwrap();
        assert!(objects.is_empty(), "{objects:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_missing_bucket_and_an_empty_prefix_are_named() {
        let Some(moto) = MotoServer::for_test(&[]) else {
            return;
        };
        let vars = moto.aws_vars("not-a-real-secret");
        let nowhere: SnapshotUrl = "s3://no-such-bucket/escola".parse().unwrap();
        let store = Store::from_vars(&nowhere, vars.clone()).unwrap();
        for err in [
            offsite::list(&store).await.unwrap_err(),
            store.join("x").snapshot().await.err().unwrap(),
        ] {
            assert!(matches!(err, OffsiteError::NoBucket { .. }), "{err}");
            assert!(
                err.to_string().starts_with("s3://no-such-bucket/escola"),
                "{err}"
            );
        }
        let store = store_on(&moto);
        let err = store.join("nothing").snapshot().await.err().unwrap();
        assert!(matches!(err, OffsiteError::NoSnapshot(_)), "{err}");
        assert!(offsite::list(&store).await.unwrap().is_empty());
    }
}
