//! Snapshot throughput against the stock tools, in the same run, on one
//! generated table of 1 000 000 `sync_mutations` rows:
//!
//! - ours: `escola_runbook_checks::db::snapshot::create`, 2 threads, zstd 3;
//! - `mariadb-dump --single-transaction --quick | zstd -3`;
//! - `mydumper --threads 2` (Debian package `mydumper`), when installed.
//!
//! Needs MariaDB at 127.0.0.1:3306 (root, empty password); without it the
//! bench says so and does nothing (ESCOLA_REQUIRE_SERVICES=1 makes that an
//! error). Peak memory is printed once per tool before timing: our own from
//! the process's VmHWM after resetting it (`/proc/self/clear_refs`), the
//! peers' from `getrusage(RUSAGE_CHILDREN)`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use escola_runbook_checks::db::{self, SnapshotOptions};
use escola_runbook_core::Secret;

const DB: &str = "escola_bench_snapshot";
const ROWS: u64 = 1_000_000;
const THREADS: usize = 2;

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
           KEY (status, created_at)
         ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
         INSERT INTO sync_mutations (device_id, entity, entity_id, operation, payload, status, attempts, weight, created_at, processed_at)
         SELECT CONCAT('device-', seq % 5000), ELT(1 + seq % 3, 'escola', 'evento', 'cidade'), seq * 7,
                ELT(1 + seq % 3, 'create', 'update', 'delete'),
                CONCAT('{{\"nome\": \"Escola ', seq, '\", \"alunos\": ', seq % 1200, ', \"ativo\": true}}'),
                IF(seq % 10 = 0, 'pending', 'done'), seq % 4, seq / 3.0,
                '2026-01-01' + INTERVAL seq SECOND, IF(seq % 10 = 0, NULL, '2026-01-01' + INTERVAL seq + 5 SECOND)
         FROM seq_1_to_{ROWS};
         ANALYZE TABLE sync_mutations;"
    ));
    assert!(ok, "could not create the bench dataset");
    true
}

fn peak_rss_kib_self() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn children_peak_rss_kib() -> u64 {
    // SAFETY: getrusage only fills the struct we pass.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage.ru_maxrss as u64
    }
}

fn shell(line: &str) {
    let ok = Command::new("/bin/sh")
        .args(["-c", line])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "`{line}` failed");
}

fn ours(rt: &tokio::runtime::Runtime, out: &Path) {
    let url = Secret::new(format!("mysql://root@127.0.0.1:3306/{DB}"));
    let mut opts = SnapshotOptions::new(out);
    opts.threads = THREADS;
    let (dir, manifest) = rt.block_on(db::snapshot::create(&url, &opts)).unwrap();
    assert_eq!(manifest.total_rows, ROWS);
    std::fs::remove_dir_all(dir).unwrap();
}

fn bench(c: &mut Criterion) {
    if !setup() {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().to_owned();
    let dump = format!(
        "mariadb-dump -uroot -h127.0.0.1 --single-transaction --quick {DB} | zstd -3 -q -f -o {}/dump.sql.zst",
        out.display()
    );
    let has_mydumper = Command::new("mydumper").arg("--version").output().is_ok();
    let mydumper = format!(
        "rm -rf {0}/mydumper && mydumper -u root -h 127.0.0.1 -B {DB} --threads {THREADS} --rows 500000 -c -o {0}/mydumper",
        out.display()
    );

    // Peak memory, once each, outside the timed loops.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    ours(&rt, &out);
    eprintln!(
        "peak RSS, escola-runbook snapshot (whole bench process, after reset): {} KiB",
        peak_rss_kib_self().unwrap_or(0)
    );
    shell(&dump);
    eprintln!(
        "peak RSS, largest child of `mariadb-dump | zstd`: {} KiB",
        children_peak_rss_kib()
    );
    if has_mydumper {
        shell(&mydumper);
        eprintln!(
            "peak RSS, largest child so far (mydumper included): {} KiB",
            children_peak_rss_kib()
        );
    }

    let mut group = c.benchmark_group("snapshot_1M_sync_mutations");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(40));
    group.warm_up_time(Duration::from_secs(1));
    group.bench_function("escola_runbook_2_threads", |b| b.iter(|| ours(&rt, &out)));
    group.bench_function("mariadb_dump_single_transaction_zstd", |b| {
        b.iter(|| shell(&dump))
    });
    if has_mydumper {
        group.bench_function("mydumper_2_threads", |b| b.iter(|| shell(&mydumper)));
    } else {
        eprintln!("mydumper is not installed (apt-get install mydumper): its line is missing");
    }
    group.finish();
    mariadb(&format!("DROP DATABASE IF EXISTS {DB}"));
}

criterion_group!(benches, bench);
criterion_main!(benches);
