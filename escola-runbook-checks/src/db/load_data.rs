//! A data file's INSERT statement as the rows `LOAD DATA LOCAL INFILE`
//! reads. The server then splits each row into fields instead of parsing
//! it as SQL: on MariaDB 10.11 that part (the parser, the lexer, one `Item`
//! per value) was about a fifth of a restore's server time in perf. On the
//! bench data, the rows as `LOAD DATA` loaded in 4.5 s through the stock
//! client, against 7.4 s for the same rows as our INSERTs.
//!
//! The values a snapshot writes (`NULL`, numbers, quoted strings with
//! backslash escapes, see [`super::sql::literal`]) are what `LOAD DATA`
//! reads with the clauses of the statement [`rows_load`] returns: `NULL` unquoted is
//! NULL and quoted is a string; `\0 \' \\ \n \r \Z` mean what they mean in
//! SQL. Anything else (a hex literal of a binary value, a statement not
//! shaped as the dump writes it) is not converted, and runs as SQL.

use super::sql::{DUMP_CHARSET, backticked, is_number};

/// `stmt` (`INSERT INTO `t` (`a`,`b`) VALUES\n(..),\n(..)`, as a data file
/// holds it, without its `;`) rewritten in place into the rows a `LOAD
/// DATA LOCAL INFILE ... INTO TABLE t ... (columns)` reads (one line each,
/// fields as the INSERT wrote them), and that statement. `None`, with
/// `stmt` untouched, when it is not that shape or holds a value `LOAD DATA`
/// would read differently.
///
/// In place, so that a restore holds no second copy of each statement.
pub(crate) fn rows_load(stmt: &mut Vec<u8>) -> Option<String> {
    let rest = stmt.strip_prefix(b"INSERT INTO ")?;
    let (table, rest) = backticked(rest)?;
    let rest = rest.strip_prefix(b" (")?;
    let mut after = rest;
    let mut columns = 0;
    loop {
        let (_, r) = backticked(after)?;
        columns += 1;
        match r.strip_prefix(b",") {
            Some(r) => after = r,
            None => {
                after = r;
                break;
            }
        }
    }
    let column_list = std::str::from_utf8(&rest[..rest.len() - after.len()]).ok()?;
    let values = after.strip_prefix(b") VALUES\n")?;
    let load = format!(
        r"LOAD DATA LOCAL INFILE 'rows' INTO TABLE {} CHARACTER SET {DUMP_CHARSET} FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\'' ESCAPED BY '\\' LINES TERMINATED BY '\n' ({column_list})",
        std::str::from_utf8(table).ok()?
    );
    // Every row is checked, and its place noted, before `stmt` is touched.
    let start = stmt.len() - values.len();
    let spans = rows(values, columns)?;
    // Each row moves to the left of where it was (its `(` and the `,\n`
    // before it are dropped), so copying in order overwrites only what has
    // been copied already.
    let mut written = 0;
    for (from, to) in spans {
        let (from, to) = (start + from, start + to);
        stmt.copy_within(from..to, written);
        written += to - from;
        stmt[written] = b'\n';
        written += 1;
    }
    stmt.truncate(written);
    Some(load)
}

/// The span of each row's fields in `values` (`(..),\n(..)`); `None` at
/// the first row that is not as the dump writes it.
fn rows(mut values: &[u8], columns: usize) -> Option<Vec<(usize, usize)>> {
    let whole = values.len();
    let mut spans = Vec::new();
    loop {
        values = values.strip_prefix(b"(")?;
        let end = row_end(values, columns)?;
        let at = whole - values.len();
        spans.push((at, at + end));
        values = &values[end + 1..];
        if values.is_empty() {
            return Some(spans);
        }
        values = values.strip_prefix(b",\n")?;
    }
}

/// Where the row at the start of `s` ends (its closing `)`), if it holds
/// exactly `columns` fields, each `NULL`, a number, or a quoted string
/// with backslash escapes and no raw line break.
fn row_end(s: &[u8], columns: usize) -> Option<usize> {
    let mut i = 0;
    let mut fields = 0;
    loop {
        if s.get(i)? == &b'\'' {
            i += 1;
            loop {
                // Skips to the next byte that matters; a raw `\r` in the
                // bytes skipped is refused like a raw `\n`.
                let at = memchr::memchr3(b'\\', b'\'', b'\n', s.get(i..)?)?;
                if memchr::memchr(b'\r', &s[i..i + at]).is_some() {
                    return None;
                }
                i += at;
                match s[i] {
                    b'\\' => i += 2,
                    b'\'' => break,
                    _ => return None,
                }
            }
            i += 1;
        } else {
            let start = i;
            while !matches!(s.get(i)?, b',' | b')') {
                i += 1;
            }
            let token = &s[start..i];
            if token != b"NULL" && !is_number(token) {
                return None;
            }
        }
        fields += 1;
        match s.get(i)? {
            b',' => i += 1,
            b')' if fields == columns => return Some(i),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(stmt: &str) -> Option<String> {
        let mut rows = stmt.as_bytes().to_vec();
        let converted = rows_load(&mut rows).map(|_| String::from_utf8(rows.clone()).unwrap());
        if converted.is_none() {
            assert_eq!(rows, stmt.as_bytes(), "left as it was");
        }
        converted
    }

    #[test]
    fn an_insert_becomes_its_rows_and_a_load_of_the_same_columns() {
        let mut rows = b"INSERT INTO `sync_mutations` (`id`,`payload`,`weight`) VALUES\n(1,'{\"a\": 1}',3.3e-1),\n(2,NULL,-4)".to_vec();
        let load = rows_load(&mut rows).unwrap();
        assert_eq!(
            String::from_utf8(rows).unwrap(),
            "1,'{\"a\": 1}',3.3e-1\n2,NULL,-4\n"
        );
        assert_eq!(
            load,
            r"LOAD DATA LOCAL INFILE 'rows' INTO TABLE `sync_mutations` CHARACTER SET utf8mb4 FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\'' ESCAPED BY '\\' LINES TERMINATED BY '\n' (`id`,`payload`,`weight`)"
        );
    }

    #[test]
    fn quoted_values_keep_their_escapes_commas_and_parentheses() {
        assert_eq!(
            rows(
                "INSERT INTO `t` (`a`,`b`) VALUES\n('it\\'s, (one)','a\\\\b\\n\\0\\Z'),\n('NULL','')"
            )
            .as_deref(),
            Some("'it\\'s, (one)','a\\\\b\\n\\0\\Z'\n'NULL',''\n")
        );
        // Backticks doubled in a name.
        assert_eq!(
            rows("INSERT INTO `we``ird` (`co``l`) VALUES\n(1)").as_deref(),
            Some("1\n")
        );
    }

    #[test]
    fn many_rows_of_every_length_move_in_place_intact() {
        let mut stmt = b"INSERT INTO `t` (`id`,`s`,`n`) VALUES\n".to_vec();
        let mut expected = Vec::new();
        for i in 0..500u32 {
            let text: String = "x,'()\\\n\0"
                .chars()
                .cycle()
                .take((i * 7 % 300) as usize)
                .collect();
            let mut row = format!("{i},").into_bytes();
            crate::db::sql::quote_str(&mut row, text.as_bytes());
            row.extend_from_slice(if i % 3 == 0 { b",NULL" } else { b",-1.5e-7" });
            if i > 0 {
                stmt.extend_from_slice(b",\n");
            }
            stmt.push(b'(');
            stmt.extend_from_slice(&row);
            stmt.push(b')');
            expected.extend_from_slice(&row);
            expected.push(b'\n');
        }
        assert!(rows_load(&mut stmt).is_some());
        assert_eq!(stmt, expected);
    }

    #[test]
    fn what_load_data_would_read_otherwise_stays_sql() {
        for stmt in [
            // A binary value written in hex.
            "INSERT INTO `t` (`a`,`b`) VALUES\n(1,0x00FF)",
            // A quote doubled instead of escaped.
            "INSERT INTO `t` (`a`) VALUES\n('it''s')",
            // A raw line break in a value.
            "INSERT INTO `t` (`a`) VALUES\n('a\nb')",
            "INSERT INTO `t` (`a`) VALUES\n('a\rb')",
            "INSERT INTO `t` (`a`) VALUES\n('\\'a\r')",
            // A backslash at the very end.
            "INSERT INTO `t` (`a`) VALUES\n('a\\",
            // Fewer fields than columns, and more.
            "INSERT INTO `t` (`a`,`b`) VALUES\n(1)",
            "INSERT INTO `t` (`a`) VALUES\n(1,2)",
            // Not the dump's shape.
            "INSERT INTO t (`a`) VALUES\n(1)",
            "INSERT INTO `t` VALUES\n(1)",
            "INSERT INTO `t` (`a`) VALUES (1)",
            "INSERT INTO `t` (`a`) VALUES\n(1),(2)",
            "INSERT INTO `t` (`a`) VALUES\n(1);",
            "INSERT INTO `t` (`a`) VALUES\n(1",
            "INSERT INTO `t` (`a`) VALUES\n('unterminated)",
            "INSERT INTO `t` (`a`) VALUES\n(NOW())",
            "INSERT INTO `t` (`a`) VALUES\n(inf)",
            "SET NAMES utf8mb4",
            "CREATE TABLE `t` (`a` int)",
        ] {
            assert_eq!(rows(stmt), None, "{stmt}");
        }
    }
}
