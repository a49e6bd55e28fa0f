//! A simulated application host: the Escola Connect app directory the
//! runbook's commands run in, with `php`, `git` and `composer` as small
//! POSIX `sh` programs in its `bin/` that act on the simulator through
//! files in the app directory, read by the simulator on every request, the
//! way Laravel itself reads them:
//!
//! - `php artisan down --retry=N` writes `storage/framework/down`: the API
//!   answers 503 with `Retry-After: N` while it exists; `php artisan up`
//!   removes it.
//! - `php vendor/bin/doctrine-migrations migrate` applies the migrations of
//!   `migrations/` not yet listed in `storage/schema/applied`; `migrate prev`
//!   reverts the last one. `/health` reports the newest applied one as
//!   `schema_version`. With [`SimulatedHost::fail_migrations`] the last
//!   migration fails (exit 1) after the others were applied.
//!   With [`SimulatedHost::use_database`] (Laravel's `.env`), the
//!   migrations are also recorded in `doctrine_migration_versions` through
//!   the `mariadb` client.
//! - `php ./scripts/cache-clear-aggregates.php`, `php artisan config:cache`,
//!   `php vendor/bin/phpunit`, `git pull --ff-only`, `composer install` do
//!   what their output says; every program appends its command line to
//!   `storage/logs/host.log` ([`SimulatedHost::calls`]).
//!
//! No PHP, git or composer is needed: only `sh`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::host_files::{APPLIED_FILE, DOWN_FILE, schema_version};

/// The migrations the app ships: the first is applied when the host is
/// created (the release in production), the others are the new release's.
pub const MIGRATIONS: [&str; 3] = [
    "Version20251110090000",
    "Version20251201120000",
    "Version20251201123000",
];

/// While it exists, the newest migration fails.
const MIGRATION_FAULT_FILE: &str = "storage/schema/fail-next";

/// Every host program's command line, one per line.
const CALLS_FILE: &str = "storage/logs/host.log";

/// `php`: `artisan`, the Doctrine migrations, phpunit and the app's scripts.
const PHP: &str = r#"#!/bin/sh
# Simulated PHP for the escola-runbook testkit: acts on the simulator
# through files in the app directory (the current directory).
set -u
echo "php $*" >> storage/logs/host.log
# Laravel's .env: with DB_DATABASE set, the migrations are recorded in
# doctrine_migration_versions too, through the mariadb client.
[ -f .env ] && . ./.env
db() {
  [ -n "${DB_DATABASE:-}" ] || return 0
  mariadb --host="$DB_HOST" --port="$DB_PORT" --user="$DB_USERNAME" "$DB_DATABASE" -e "$1" || exit 1
}
script="${1:-}"
[ $# -gt 0 ] && shift
case "$script" in
  artisan)
    case "${1:-}" in
      down)
        retry=60
        for arg in "$@"; do
          case "$arg" in --retry=*) retry="${arg#--retry=}" ;; esac
        done
        printf '{"retry":%s}\n' "$retry" > storage/framework/down
        echo "INFO  Application is now in maintenance mode (retry after ${retry}s)."
        ;;
      up)
        rm -f storage/framework/down
        echo "INFO  Application is now live."
        ;;
      config:cache)
        date > bootstrap/cache/config.php
        echo "INFO  Configuration cached successfully."
        ;;
      *) echo "artisan: command \"${1:-}\" is not defined" >&2; exit 1 ;;
    esac
    ;;
  vendor/bin/doctrine-migrations)
    [ "${1:-}" = migrate ] || { echo "doctrine-migrations: unknown command ${1:-}" >&2; exit 1; }
    touch storage/schema/applied
    if [ "${2:-}" = prev ]; then
      last=$(tail -n 1 storage/schema/applied)
      [ -n "$last" ] || { echo "[ERROR] Already at the first version." >&2; exit 1; }
      db "DELETE FROM doctrine_migration_versions WHERE version LIKE '%$last'"
      sed '$d' storage/schema/applied > storage/schema/applied.tmp
      mv storage/schema/applied.tmp storage/schema/applied
      echo "[notice] Migrating down to $(tail -n 1 storage/schema/applied): reverted $last"
      exit 0
    fi
    newest=$(ls migrations | sed 's/\.php$//' | sort | tail -n 1)
    count=0
    for m in $(ls migrations | sed 's/\.php$//' | sort); do
      grep -qx "$m" storage/schema/applied && continue
      if [ "$m" = "$newest" ] && [ -e storage/schema/fail-next ]; then
        echo "[ERROR] Migration $m failed during Execution: SQLSTATE[42S21]: Column already exists: 1060 Duplicate column name 'escola_id'" >&2
        exit 1
      fi
      db "INSERT INTO doctrine_migration_versions (version, executed_at, execution_time) VALUES ('DoctrineMigrations\\\\$m', NOW(), 1)"
      echo "$m" >> storage/schema/applied
      count=$((count + 1))
    done
    echo "[OK] Successfully migrated to version: $(tail -n 1 storage/schema/applied) ($count migrations executed)"
    ;;
  vendor/bin/phpunit)
    echo "OK (128 tests, 412 assertions)"
    ;;
  ./scripts/cache-clear-aggregates.php|scripts/cache-clear-aggregates.php)
    date >> storage/framework/cache/aggregates-cleared
    echo "aggregates cache cleared"
    ;;
  *) echo "Could not open input file: $script" >&2; exit 1 ;;
esac
"#;

/// A host program that answers one subcommand with `output` (`git pull`,
/// `composer install`), logs its command line, and refuses the others.
fn tool(name: &str, command: &str, output: &[&str]) -> String {
    let echo: Vec<String> = output
        .iter()
        .map(|line| format!("echo \"{line}\""))
        .collect();
    format!(
        "#!/bin/sh\necho \"{name} $*\" >> {CALLS_FILE}\ncase \"${{1:-}}\" in\n  {command}) {} ;;\n  *) echo \"{name}: command '${{1:-}}' is not simulated\" >&2; exit 1 ;;\nesac\n",
        echo.join("; ")
    )
}

/// The simulated host could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the simulated host in {path}: {source}")]
pub struct HostError {
    /// The file or directory that could not be written.
    pub path: PathBuf,
    /// Why.
    pub source: std::io::Error,
}

/// An application directory whose `bin/` programs act on a simulator:
/// run the runbook's commands in [`SimulatedHost::app_dir`] with
/// [`SimulatedHost::path_env`] as `PATH`.
#[derive(Debug, Clone)]
pub struct SimulatedHost {
    dir: PathBuf,
}

impl SimulatedHost {
    /// Writes the app directory into `dir` (created if missing);
    /// `SimulatedHost::create` also points the simulator at it.
    pub(crate) fn write(dir: PathBuf) -> Result<Self, HostError> {
        let at = |rel: &str| dir.join(rel);
        let fail = |path: PathBuf| move |source| HostError { path, source };
        for sub in [
            "bin",
            "migrations",
            "scripts",
            "vendor/bin",
            "bootstrap/cache",
            "storage/framework/cache",
            "storage/schema",
            "storage/logs",
        ] {
            std::fs::create_dir_all(at(sub)).map_err(fail(at(sub)))?;
        }
        let write = |rel: &str, text: &str| std::fs::write(at(rel), text).map_err(fail(at(rel)));
        let git = tool(
            "git",
            "pull",
            &["Updating 1a2b3c4..5d6e7f8", "Fast-forward"],
        );
        let composer = tool(
            "composer",
            "install",
            &[
                "Installing dependencies from lock file",
                "Generating optimized autoload files",
            ],
        );
        for (name, text) in [
            ("bin/php", PHP),
            ("bin/git", git.as_str()),
            ("bin/composer", composer.as_str()),
        ] {
            write(name, text)?;
            executable(&at(name)).map_err(fail(at(name)))?;
        }
        for file in [
            "artisan",
            "vendor/bin/doctrine-migrations",
            "vendor/bin/phpunit",
            "scripts/cache-clear-aggregates.php",
        ] {
            write(file, "<?php // simulated: bin/php runs it\n")?;
        }
        for m in MIGRATIONS {
            write(&format!("migrations/{m}.php"), "<?php // simulated\n")?;
        }
        write(APPLIED_FILE, &format!("{}\n", MIGRATIONS[0]))?;
        write(CALLS_FILE, "")?;
        Ok(SimulatedHost { dir })
    }

    /// The application directory the commands run in.
    pub fn app_dir(&self) -> &Path {
        &self.dir
    }

    /// `PATH` for the commands: the host's `bin/` first, then this
    /// process's `PATH` (for `sh`, `sed`, `date`).
    pub fn path_env(&self) -> OsString {
        let mut dirs = vec![self.dir.join("bin")];
        if let Some(path) = std::env::var_os("PATH") {
            dirs.extend(std::env::split_paths(&path));
        }
        std::env::join_paths(dirs).unwrap_or_else(|_| self.dir.join("bin").into_os_string())
    }

    /// Makes the newest migration fail (`--fault migration`), or work again.
    pub fn fail_migrations(&self, on: bool) -> Result<(), HostError> {
        let path = self.dir.join(MIGRATION_FAULT_FILE);
        let done = if on {
            std::fs::write(&path, "")
        } else {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        };
        done.map_err(|source| HostError { path, source })
    }

    /// The newest applied migration, as `/health` reports it.
    pub fn schema_version(&self) -> Option<String> {
        schema_version(&self.dir)
    }

    /// Whether maintenance mode is on.
    pub fn in_maintenance(&self) -> bool {
        self.dir.join(DOWN_FILE).exists()
    }

    /// The host programs' command lines so far, oldest first.
    pub fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join(CALLS_FILE))
            .map(|text| text.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    }
}

/// A MariaDB database the host's migrations record themselves in (no
/// password: the scratch servers of tests and examples).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostDatabase {
    /// Server host (`127.0.0.1`).
    pub host: String,
    /// Server port (3306).
    pub port: u16,
    /// User (`root`).
    pub user: String,
    /// The database, holding `doctrine_migration_versions`.
    pub database: String,
}

impl SimulatedHost {
    /// Writes Laravel's `.env` naming `db`: from now on the migrations are
    /// also inserted into (and `migrate prev` deleted from) its
    /// `doctrine_migration_versions`, with the `mariadb` client.
    pub fn use_database(&self, db: &HostDatabase) -> Result<(), HostError> {
        let path = self.dir.join(".env");
        let text = format!(
            "DB_HOST='{}'\nDB_PORT='{}'\nDB_USERNAME='{}'\nDB_DATABASE='{}'\n",
            db.host, db.port, db.user, db.database
        );
        std::fs::write(&path, text).map_err(|source| HostError { path, source })
    }
}

#[cfg(unix)]
fn executable(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
}

#[cfg(not(unix))]
fn executable(_: &Path) -> std::io::Result<()> {
    Ok(())
}
