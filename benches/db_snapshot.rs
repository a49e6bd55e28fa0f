//! Snapshot and restore against the stock tools, in the same run, on the
//! same generated data: 1 000 000 `sync_mutations` rows and 500 000
//! `eventos` rows, each table with two secondary keys (about 300 MB of SQL).
//!
//! Every tool runs as a process, ours too (the release `escola-runbook`,
//! built on first use or given as `ESCOLA_RUNBOOK_BIN`), so wall time and
//! peak RSS (from `wait4`: the largest process of a pipeline) compare alike.
//!
//! Snapshot (2 connections where the tool has a choice):
//! - ours: `escola-runbook snapshot create --threads 2` (zstd 3);
//! - `mariadb-dump --single-transaction --quick | zstd -3`;
//! - the server's floor: `SELECT *` of every table over the same number of
//!   connections, by the same primary-key ranges, rows dropped as read;
//! - `mydumper --threads 2 -c` (Debian package `mydumper`), when installed.
//!
//! Restore (4 connections where the tool has a choice), into a new database
//! each time (dropping it is not timed):
//! - ours: `escola-runbook snapshot restore --threads 4` of our snapshot;
//! - `zstd -dc dump.sql.zst | mariadb` of the `mariadb-dump` output;
//! - `myloader --threads 4` of the mydumper output, when installed.
//!
//! Needs MariaDB at 127.0.0.1:3306 (root, empty password); without it the
//! bench says so and does nothing (ESCOLA_REQUIRE_SERVICES=1 makes that an
//! error). Peak RSS is printed once per tool before timing.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use mysql_async::prelude::Queryable;
use support::{ours, run};

mod support;

const DB: &str = "escola_bench_snapshot";
const RESTORED: &str = "escola_bench_restored";
const SNAPSHOT_THREADS: usize = 2;
const RESTORE_THREADS: usize = 4;
const CHUNK_ROWS: u64 = 500_000;
const ROOT: &str = "mysql://root@127.0.0.1:3306";

fn mariadb(sql: &str) -> bool {
    Command::new("mariadb")
        .args(["-uroot", "-h127.0.0.1", "-e", sql])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn setup() -> bool {
    if !mariadb("SELECT 1") {
        if std::env::var("ESCOLA_REQUIRE_SERVICES").as_deref() == Ok("1") {
            panic!("MariaDB at 127.0.0.1:3306 is required (ESCOLA_REQUIRE_SERVICES=1)");
        }
        eprintln!("skipping db_snapshot bench: MariaDB at 127.0.0.1:3306 is not reachable");
        return false;
    }
    let ok = mariadb(&format!(
        "DROP DATABASE IF EXISTS {DB}; CREATE DATABASE {DB}; USE {DB};
         CREATE TABLE sync_mutations (
           id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
           device_id VARCHAR(64) NOT NULL,
           entity VARCHAR(32) NOT NULL,
           entity_id BIGINT NOT NULL,
           operation ENUM('create','update','delete') NOT NULL,
           payload JSON NOT NULL,
           status VARCHAR(16) NOT NULL,
           attempts INT NOT NULL DEFAULT 0,
           weight DOUBLE,
           created_at DATETIME(6) NOT NULL,
           processed_at DATETIME(6) NULL,
           KEY (status, created_at),
           KEY (device_id)
         ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
         INSERT INTO sync_mutations (device_id, entity, entity_id, operation, payload, status, attempts, weight, created_at, processed_at)
         SELECT CONCAT('device-', seq % 5000), ELT(1 + seq % 3, 'escola', 'evento', 'cidade'), seq * 7,
                ELT(1 + seq % 3, 'create', 'update', 'delete'),
                CONCAT('{{\"nome\": \"Escola ', seq, '\", \"alunos\": ', seq % 1200, ', \"ativo\": true}}'),
                IF(seq % 10 = 0, 'pending', 'done'), seq % 4, seq / 3.0,
                '2026-01-01' + INTERVAL seq SECOND, IF(seq % 10 = 0, NULL, '2026-01-01' + INTERVAL seq + 5 SECOND)
         FROM seq_1_to_1000000;
         CREATE TABLE eventos (
           id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
           escola_id INT UNSIGNED NOT NULL,
           tipo VARCHAR(24) NOT NULL,
           titulo VARCHAR(120) NOT NULL,
           descricao TEXT,
           inicio DATETIME NOT NULL,
           KEY (escola_id, inicio),
           KEY (tipo)
         ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
         INSERT INTO eventos (escola_id, tipo, titulo, descricao, inicio)
         SELECT seq % 20000, ELT(1 + seq % 4, 'reuniao', 'feira', 'prova', 'festa'), CONCAT('Evento ', seq),
                REPEAT(CONCAT('Descrição do evento ', seq, '. '), 1 + seq % 4), '2026-02-01' + INTERVAL seq MINUTE
         FROM seq_1_to_500000;
         ANALYZE TABLE sync_mutations, eventos;"
    ));
    assert!(ok, "could not create the bench dataset");
    true
}

/// Runs `cmd`, which must succeed; its peak RSS in KiB.
fn must(cmd: &mut Command) -> i64 {
    let (code, kib) = run(cmd);
    assert_eq!(code, 0, "{cmd:?} failed");
    kib
}

fn shell(line: &str) -> Command {
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", line]);
    cmd
}

/// Every row of every table read and dropped, over `SNAPSHOT_THREADS`
/// connections, by the same primary-key ranges the snapshot splits into.
async fn select_floor() {
    let mut ranges = Vec::new();
    for (table, rows) in [("sync_mutations", 1_000_000u64), ("eventos", 500_000)] {
        let mut from = 0;
        while from < rows {
            ranges.push(format!(
                "SELECT * FROM {DB}.{table} WHERE id > {from} AND id <= {}",
                from + CHUNK_ROWS
            ));
            from += CHUNK_ROWS;
        }
    }
    let queue = std::sync::Arc::new(std::sync::Mutex::new(ranges));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..SNAPSHOT_THREADS {
        let queue = queue.clone();
        workers.spawn(async move {
            let opts = mysql_async::Opts::from_url(ROOT).unwrap();
            let mut conn = mysql_async::Conn::new(opts).await.unwrap();
            conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
                .await
                .unwrap();
            let mut rows = 0u64;
            loop {
                let next = queue.lock().unwrap().pop();
                let Some(sql) = next else { break };
                let mut result = conn.query_iter(sql).await.unwrap();
                result.for_each(|_| rows += 1).await.unwrap();
            }
            rows
        });
    }
    let rows: u64 = workers.join_all().await.into_iter().sum();
    assert_eq!(rows, 1_500_000);
}

fn fresh_target() {
    assert!(mariadb(&format!(
        "DROP DATABASE IF EXISTS {RESTORED}; CREATE DATABASE {RESTORED} CHARACTER SET utf8mb4"
    )));
}

fn bench(c: &mut Criterion) {
    if !setup() {
        return;
    }
    let bin = ours();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().to_owned();
    let snapshot = |to: &Path| {
        let mut cmd = Command::new(&bin);
        cmd.args(["snapshot", "create", "--db-url-env", "DBURL", "--threads"])
            .arg(SNAPSHOT_THREADS.to_string())
            .arg("--out")
            .arg(to)
            .env("DBURL", format!("{ROOT}/{DB}"));
        cmd
    };
    let dump_file = out.join("dump.sql.zst");
    let dump = format!(
        "mariadb-dump -uroot -h127.0.0.1 --single-transaction --quick {DB} | zstd -3 -q -f -o {}",
        dump_file.display()
    );
    let has_mydumper = Command::new("mydumper").arg("--version").output().is_ok()
        && Command::new("myloader").arg("--version").output().is_ok();
    let mydumper_dir = out.join("mydumper");
    let mydumper = format!(
        "rm -rf {0} && mydumper -u root -h 127.0.0.1 -B {DB} --threads {SNAPSHOT_THREADS} --rows {CHUNK_ROWS} -c -o {0}",
        mydumper_dir.display()
    );
    let stock_restore = format!(
        "zstd -dc {} | mariadb -uroot -h127.0.0.1 {RESTORED}",
        dump_file.display()
    );
    let myloader = format!(
        "myloader -u root -h 127.0.0.1 -d {} -B {RESTORED} --threads {RESTORE_THREADS} -o",
        mydumper_dir.display()
    );

    // Peak RSS, once each, outside the timed loops; this also leaves the
    // inputs the restores read.
    let ours_dir = out.join("ours");
    let kib = must(&mut snapshot(&ours_dir));
    eprintln!("peak RSS, escola-runbook snapshot create: {kib} KiB");
    let snap = std::fs::read_dir(&ours_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("manifest.json").is_file())
        .expect("our snapshot");
    let mut restore = Command::new(&bin);
    restore
        .args(["snapshot", "restore"])
        .arg(&snap)
        .args(["--db-url-env", "DBURL", "--database", RESTORED, "--threads"])
        .arg(RESTORE_THREADS.to_string())
        .env("DBURL", ROOT);
    fresh_target();
    let kib = must(&mut restore);
    eprintln!("peak RSS, escola-runbook snapshot restore: {kib} KiB");
    let kib = must(&mut shell(&dump));
    eprintln!("peak RSS, mariadb-dump | zstd -3: {kib} KiB");
    fresh_target();
    let kib = must(&mut shell(&stock_restore));
    eprintln!("peak RSS, zstd -dc | mariadb: {kib} KiB");
    if has_mydumper {
        let kib = must(&mut shell(&mydumper));
        eprintln!("peak RSS, mydumper: {kib} KiB");
        fresh_target();
        let kib = must(&mut shell(&myloader));
        eprintln!("peak RSS, myloader: {kib} KiB");
    } else {
        eprintln!(
            "mydumper/myloader are not installed (apt-get install mydumper): their lines are missing"
        );
    }

    let mut group = c.benchmark_group("snapshot_1M_sync_mutations_500k_eventos");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(30));
    group.warm_up_time(Duration::from_secs(1));
    let timed = out.join("timed");
    group.bench_function("escola_runbook_2_threads", |b| {
        b.iter(|| {
            must(&mut snapshot(&timed));
            std::fs::remove_dir_all(&timed).unwrap();
        })
    });
    group.bench_function("mariadb_dump_single_transaction_zstd", |b| {
        b.iter(|| must(&mut shell(&dump)))
    });
    group.bench_function("select_star_floor_2_connections", |b| {
        b.iter(|| rt.block_on(select_floor()))
    });
    if has_mydumper {
        group.bench_function("mydumper_2_threads", |b| {
            b.iter(|| must(&mut shell(&mydumper)))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("restore_1M_sync_mutations_500k_eventos");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(60));
    group.warm_up_time(Duration::from_secs(1));
    group.bench_function("escola_runbook_4_threads", |b| {
        b.iter_batched(
            fresh_target,
            |_| must(&mut restore),
            BatchSize::PerIteration,
        )
    });
    group.bench_function("zstd_dc_pipe_mariadb", |b| {
        b.iter_batched(
            fresh_target,
            |_| must(&mut shell(&stock_restore)),
            BatchSize::PerIteration,
        )
    });
    if has_mydumper {
        group.bench_function("myloader_4_threads", |b| {
            b.iter_batched(
                fresh_target,
                |_| must(&mut shell(&myloader)),
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
    mariadb(&format!(
        "DROP DATABASE IF EXISTS {DB}; DROP DATABASE IF EXISTS {RESTORED}"
    ));
}

criterion_group!(benches, bench);
criterion_main!(benches);
