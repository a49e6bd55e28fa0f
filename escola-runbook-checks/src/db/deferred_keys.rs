//! Secondary indexes built after the rows: loading into a table with only
//! its primary key and then building each secondary index in one sorted
//! pass (`ALTER TABLE ... ADD KEY`) is much faster than maintaining every
//! index row by row, the way myloader and `mysqlpump --defer-table-indexes`
//! do it.
//!
//! Only where that is safe, judged from the `SHOW CREATE TABLE` text the
//! snapshot holds (one definition per line):
//! - InnoDB tables only (MyISAM and Aria rebuild keys their own way);
//! - plain `KEY`s only: primary, unique, fulltext and spatial keys and every
//!   constraint stay in the `CREATE TABLE`;
//! - not in a table that has a foreign key, or that one refers to: InnoDB
//!   needs an index on both sides of one and would otherwise make its own;
//! - not a key that starts with the `AUTO_INCREMENT` column unless a kept
//!   primary or unique key also does: such a column must lead some key;
//! - not in a table whose text is not laid out one definition per line.
//!
//! Anything else is restored exactly as dumped.

use std::collections::BTreeSet;

use super::sql::backticked;

/// The `CREATE TABLE` statements of one schema, with their deferred keys
/// taken out, and the `ALTER TABLE` statement that adds each table's back.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct DeferredKeys {
    /// One `ALTER TABLE` per table, in the order the tables came.
    pub(crate) alters: Vec<KeyBuild>,
    /// Keys deferred, over all tables.
    pub(crate) keys: usize,
}

/// The statement that adds a table's deferred keys back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyBuild {
    /// The table, quoted as its `CREATE TABLE` has it.
    pub(crate) table: String,
    /// `ALTER TABLE t ADD KEY ..., ADD KEY ...`.
    pub(crate) sql: String,
    /// The table has an `AUTO_INCREMENT` column: InnoDB gives its
    /// `LOAD DATA`s a table-level AUTO-INC lock in turn, so its files load
    /// one after the other whatever the connections.
    pub(crate) serial: bool,
}

/// Takes the deferrable keys out of the `CREATE TABLE` statements among
/// `statements` (a schema file's, in order; others are left alone) and
/// returns how to add them back once the rows are in.
pub(crate) fn defer_keys(statements: &mut [Vec<u8>]) -> DeferredKeys {
    let referenced: BTreeSet<String> = statements
        .iter()
        .filter_map(|s| std::str::from_utf8(s).ok())
        .flat_map(referenced_tables)
        .collect();
    let mut out = DeferredKeys::default();
    for stmt in statements.iter_mut() {
        let Ok(text) = std::str::from_utf8(stmt) else {
            continue;
        };
        let Some(Split {
            table,
            create,
            keys,
            serial,
        }) = split_create(text, &referenced)
        else {
            continue;
        };
        out.keys += keys.len();
        out.alters.push(KeyBuild {
            sql: format!("ALTER TABLE {table} ADD {}", keys.join(", ADD ")),
            table,
            serial,
        });
        *stmt = create.into_bytes();
    }
    out
}

/// The quoted name of the table `text` creates, as written.
fn created_table(text: &str) -> Option<String> {
    let (name, _) = quoted(text.strip_prefix("CREATE TABLE ")?)?;
    Some(name.to_owned())
}

/// The backticked identifier at the start of `s` (doubled backticks
/// inside), and what follows it.
fn quoted(s: &str) -> Option<(&str, &str)> {
    // Split after a backtick: an ASCII byte, so both halves stay UTF-8.
    let (name, _) = backticked(s.as_bytes())?;
    Some(s.split_at(name.len()))
}

/// The tables the foreign keys of `text` refer to (last part of a dotted
/// name, quoted), so that their keys are left where they are.
fn referenced_tables(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(" REFERENCES ") {
        rest = &rest[at + " REFERENCES ".len()..];
        let mut name = None;
        let mut after = rest;
        while let Some((part, tail)) = quoted(after) {
            name = Some(part);
            match tail.strip_prefix('.') {
                Some(t) => after = t,
                None => break,
            }
        }
        if let Some(n) = name {
            out.push(n.to_owned());
        }
    }
    out
}

/// How a definition line of `SHOW CREATE TABLE` begins, and whether it is
/// a key that may be deferred.
const DEFINITION_STARTS: &[&str] = &[
    "`",
    "PRIMARY KEY ",
    "UNIQUE KEY ",
    "KEY ",
    "FULLTEXT KEY ",
    "SPATIAL KEY ",
    "VECTOR KEY ",
    "CONSTRAINT ",
    "PERIOD FOR ",
];

/// A `CREATE TABLE` with its deferrable keys taken out.
struct Split {
    /// The table, quoted.
    table: String,
    /// The statement without them.
    create: String,
    /// Their definitions.
    keys: Vec<String>,
    /// The table has an `AUTO_INCREMENT` column.
    serial: bool,
}

/// `text` split into the table without its deferrable keys and those
/// keys; `None` when nothing is deferred.
fn split_create(text: &str, referenced: &BTreeSet<String>) -> Option<Split> {
    let table = created_table(text)?;
    if referenced.contains(&table) || text.contains(" FOREIGN KEY ") {
        return None;
    }
    let lines: Vec<&str> = text.split('\n').collect();
    let options = lines.iter().position(|l| l.starts_with(") "))?;
    if options < 2 || !lines[0].ends_with(" (") || !lines[options].contains(" ENGINE=InnoDB") {
        return None;
    }
    let inner = &lines[1..options];
    let definitions: Vec<&str> = inner
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let last = i + 1 == inner.len();
            let body = l.strip_prefix("  ")?;
            let body = if last { body } else { body.strip_suffix(',')? };
            DEFINITION_STARTS
                .iter()
                .any(|s| body.starts_with(s))
                .then_some(body)
        })
        .collect::<Option<_>>()?;
    let auto_increment = definitions
        .iter()
        .find(|d| d.starts_with('`') && d.contains(" AUTO_INCREMENT"))
        .and_then(|d| quoted(d))
        .map(|(name, _)| name);
    let leads = |d: &str, column: &str| first_column(d) == Some(column);
    let auto_increment_led = auto_increment.is_some_and(|c| {
        definitions
            .iter()
            .filter(|d| d.starts_with("PRIMARY KEY ") || d.starts_with("UNIQUE KEY "))
            .any(|d| leads(d, c))
    });
    let (deferred, kept): (Vec<&str>, Vec<&str>) = definitions.iter().partition(|d| {
        d.starts_with("KEY ")
            && match auto_increment {
                Some(c) if leads(d, c) => auto_increment_led,
                _ => true,
            }
    });
    if deferred.is_empty() || kept.is_empty() {
        return None;
    }
    let mut create = String::with_capacity(text.len());
    create.push_str(lines[0]);
    create.push('\n');
    create.push_str(
        &kept
            .iter()
            .map(|d| format!("  {d}"))
            .collect::<Vec<_>>()
            .join(",\n"),
    );
    for l in &lines[options..] {
        create.push('\n');
        create.push_str(l);
    }
    Some(Split {
        table,
        create,
        keys: deferred.iter().map(|d| d.to_string()).collect(),
        serial: auto_increment.is_some(),
    })
}

/// The first column of the key definition `d` (`KEY \`n\` (\`c\`,...)`),
/// quoted.
fn first_column(d: &str) -> Option<&str> {
    let open = d.find(" (`")?;
    quoted(&d[open + 2..]).map(|(c, _)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqls(d: &DeferredKeys) -> Vec<&str> {
        d.alters.iter().map(|b| b.sql.as_str()).collect()
    }

    fn defer(stmts: &[&str]) -> (Vec<String>, DeferredKeys) {
        let mut bytes: Vec<Vec<u8>> = stmts.iter().map(|s| s.as_bytes().to_vec()).collect();
        let deferred = defer_keys(&mut bytes);
        let texts = bytes
            .into_iter()
            .map(|b| String::from_utf8(b).unwrap())
            .collect();
        (texts, deferred)
    }

    const SYNC: &str = "CREATE TABLE `sync_mutations` (
  `id` bigint(20) unsigned NOT NULL AUTO_INCREMENT,
  `status` varchar(16) NOT NULL,
  `created_at` datetime(6) NOT NULL,
  `device_id` varchar(64) NOT NULL,
  PRIMARY KEY (`id`),
  KEY `status` (`status`,`created_at`),
  KEY `device_id` (`device_id`(10))
) ENGINE=InnoDB AUTO_INCREMENT=1000001 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci";

    #[test]
    fn plain_keys_of_an_innodb_table_move_to_one_alter_after_the_rows() {
        let (texts, deferred) = defer(&["DROP TABLE IF EXISTS `sync_mutations`", SYNC]);
        assert_eq!(texts[0], "DROP TABLE IF EXISTS `sync_mutations`");
        // Its AUTO_INCREMENT column makes its loads take turns.
        assert!(deferred.alters[0].serial);
        assert_eq!(
            texts[1],
            "CREATE TABLE `sync_mutations` (
  `id` bigint(20) unsigned NOT NULL AUTO_INCREMENT,
  `status` varchar(16) NOT NULL,
  `created_at` datetime(6) NOT NULL,
  `device_id` varchar(64) NOT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB AUTO_INCREMENT=1000001 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci"
        );
        assert_eq!(
            sqls(&deferred),
            [
                "ALTER TABLE `sync_mutations` ADD KEY `status` (`status`,`created_at`), ADD KEY `device_id` (`device_id`(10))"
            ]
        );
        assert_eq!(deferred.keys, 2);
    }

    #[test]
    fn myisam_foreign_keys_and_their_targets_stay_as_dumped() {
        let myisam = SYNC.replace("ENGINE=InnoDB", "ENGINE=MyISAM");
        let parent = "CREATE TABLE `cidades` (
  `id` int(11) NOT NULL,
  `nome` varchar(80) NOT NULL,
  PRIMARY KEY (`id`),
  KEY `nome` (`nome`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";
        let child = "CREATE TABLE `escolas` (
  `id` int(11) NOT NULL,
  `cidade_id` int(11) NOT NULL,
  `nome` varchar(80) NOT NULL,
  PRIMARY KEY (`id`),
  KEY `nome` (`nome`),
  CONSTRAINT `fk_cidade` FOREIGN KEY (`cidade_id`) REFERENCES `cidades` (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";
        let (texts, deferred) = defer(&[&myisam, parent, child]);
        assert_eq!(texts, [myisam.as_str(), parent, child]);
        assert_eq!(deferred, DeferredKeys::default());
    }

    #[test]
    fn a_key_the_auto_increment_column_needs_stays() {
        let only_key = "CREATE TABLE `log` (
  `seq` int(11) NOT NULL AUTO_INCREMENT,
  `day` date NOT NULL,
  PRIMARY KEY (`day`,`seq`),
  KEY `seq` (`seq`),
  KEY `day_only` (`day`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";
        let (texts, deferred) = defer(&[only_key]);
        assert!(
            texts[0].contains("  KEY `seq` (`seq`)\n) ENGINE"),
            "{}",
            texts[0]
        );
        assert_eq!(
            sqls(&deferred),
            ["ALTER TABLE `log` ADD KEY `day_only` (`day`)"]
        );

        let led_by_unique = only_key.replace(
            "PRIMARY KEY (`day`,`seq`)",
            "PRIMARY KEY (`day`,`seq`),\n  UNIQUE KEY `u` (`seq`)",
        );
        let (_, deferred) = defer(&[&led_by_unique]);
        assert_eq!(deferred.keys, 2);
    }

    #[test]
    fn text_not_laid_out_one_definition_per_line_is_left_alone() {
        let odd = SYNC.replace(
            "`status` varchar(16) NOT NULL,",
            "`status` varchar(16) NOT NULL COMMENT 'two\nlines',",
        );
        let only_keys = "CREATE TABLE `k` (
  KEY `a` (`a`)
) ENGINE=InnoDB";
        let (texts, deferred) = defer(&[&odd, only_keys, "CREATE VIEW `v` AS SELECT 1"]);
        assert_eq!(texts[0], odd);
        assert_eq!(texts[1], only_keys);
        assert_eq!(deferred.keys, 0);
    }

    #[test]
    fn backticks_in_names_and_partitions_survive() {
        let odd_name = "CREATE TABLE `we``ird` (
  `i``d` int(11) NOT NULL,
  `v` int(11) DEFAULT NULL,
  PRIMARY KEY (`i``d`),
  KEY `v``k` (`v`)
) ENGINE=InnoDB DEFAULT CHARSET=latin1
 PARTITION BY HASH (`i``d`)
PARTITIONS 2";
        let (texts, deferred) = defer(&[odd_name]);
        assert_eq!(
            sqls(&deferred),
            ["ALTER TABLE `we``ird` ADD KEY `v``k` (`v`)"]
        );
        assert_eq!(deferred.alters[0].table, "`we``ird`");
        assert!(!deferred.alters[0].serial, "no AUTO_INCREMENT column");
        assert!(texts[0].ends_with(
            "  PRIMARY KEY (`i``d`)\n) ENGINE=InnoDB DEFAULT CHARSET=latin1\n PARTITION BY HASH (`i``d`)\nPARTITIONS 2"
        ));
    }

    #[test]
    fn a_table_referred_to_from_another_database_keeps_its_keys() {
        assert_eq!(
            referenced_tables("x REFERENCES `other`.`cidades` (`id`) y REFERENCES `t` (`a`)"),
            ["`cidades`", "`t`"]
        );
    }
}
