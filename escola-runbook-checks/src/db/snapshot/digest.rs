//! The content checksum of a table: computed by the dump from the very
//! SQL values it writes, and recomputed the same way from the rows of a
//! restored copy, so a faithful restore gives the same figure whatever the
//! types (FLOAT, DECIMAL, NUL bytes, latin1, zero dates).

use std::collections::BTreeMap;

use mysql_async::prelude::Queryable;
use mysql_async::{Row, Value};
use sha2::{Digest, Sha256};

use super::error::{SnapshotError, query_err};
use super::plan::{self, Column};
use super::session;
use super::write::hex_digest;
use crate::db::connect::Session;
use crate::db::sql::{self, ident};

/// A table's content checksum: the rows counted, and the sum modulo 2^256
/// of the sha256 of each row's SQL values as the snapshot writes them
/// (`v1,v2,...`, the non-generated columns in table order). A sum, so the
/// figure does not depend on row order (chunks dumped in parallel, a table
/// without a key) and counts duplicate rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ContentDigest {
    rows: u64,
    sum: [u8; 32],
}

impl ContentDigest {
    /// Adds the row whose SQL values are `values`.
    pub(crate) fn add_row(&mut self, values: &[u8]) {
        self.rows += 1;
        self.add(&Sha256::digest(values).into());
    }

    /// Adds the rows of `other` (another chunk of the same table).
    pub(crate) fn merge(&mut self, other: &ContentDigest) {
        self.rows += other.rows;
        self.add(&other.sum);
    }

    /// `sum += term` modulo 2^256, both big-endian, in 64-bit limbs.
    fn add(&mut self, term: &[u8; 32]) {
        let mut carry = false;
        for (s, t) in self.sum.chunks_exact_mut(8).zip(term.chunks_exact(8)).rev() {
            let limb = |b: &[u8]| u64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
            let (v, c1) = limb(s).overflowing_add(limb(t));
            let (v, c2) = v.overflowing_add(u64::from(carry));
            s.copy_from_slice(&v.to_be_bytes());
            carry = c1 || c2;
        }
    }

    /// Rows counted.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The checksum as written in the manifest (lower-case hex).
    pub fn checksum(&self) -> String {
        hex_digest(&self.sum)
    }
}

/// Appends the SQL values of `row` (`columns` in order, comma-separated),
/// exactly as a data file holds them.
pub(super) fn write_values(buf: &mut Vec<u8>, row: &Row, columns: &[&Column]) {
    for (i, c) in columns.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        sql::literal(buf, row.as_ref(i).unwrap_or(&Value::NULL), c.kind);
    }
}

/// What a snapshot reads of table `name` of `db`: the columns it dumps (all
/// but the generated ones), their quoted list, and the quoted table.
pub(super) fn dumped<'a>(
    db: &str,
    name: &str,
    columns: &'a [Column],
) -> (Vec<&'a Column>, String, String) {
    let columns: Vec<&Column> = columns.iter().filter(|c| !c.generated).collect();
    let list = columns
        .iter()
        .map(|c| ident(&c.name))
        .collect::<Vec<_>>()
        .join(",");
    (columns, list, format!("{}.{}", ident(db), ident(name)))
}

/// The content digest of every base table of `db`, by table name,
/// recomputed from its rows as a snapshot worker reads them.
pub(crate) async fn table_digests(
    conn: &mut Session,
    db: &str,
) -> Result<BTreeMap<String, ContentDigest>, SnapshotError> {
    session::prepare(conn, true, "preparing the session").await?;
    let mut out = BTreeMap::new();
    for t in plan::read_tables(conn, db).await? {
        if t.sequence {
            continue;
        }
        let (columns, list, from) = dumped(db, &t.name, &t.columns);
        let during = format!("reading {from}");
        let mut digest = ContentDigest::default();
        let mut buf = Vec::new();
        let (c, answers) = conn.parts();
        let mut result = answers
            .within(c.exec_iter(format!("SELECT {list} FROM {from}"), ()))
            .await
            .map_err(query_err(during.clone()))?;
        while let Some(row) = answers
            .within(result.next())
            .await
            .map_err(query_err(during.clone()))?
        {
            buf.clear();
            write_values(&mut buf, &row, &columns);
            digest.add_row(&buf);
        }
        drop(result);
        out.insert(t.name, digest);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checksum_ignores_row_order_and_counts_duplicates() {
        let mut a = ContentDigest::default();
        for row in [&b"1,'x'"[..], b"2,NULL", b"1,'x'"] {
            a.add_row(row);
        }
        let (mut b, mut chunk) = (ContentDigest::default(), ContentDigest::default());
        b.add_row(b"1,'x'");
        chunk.add_row(b"2,NULL");
        chunk.add_row(b"1,'x'");
        b.merge(&chunk);
        assert_eq!(a, b);
        assert_eq!(a.rows(), 3);
        let mut once = ContentDigest::default();
        once.add_row(b"1,'x'");
        once.add_row(b"2,NULL");
        assert_ne!(once.checksum(), a.checksum(), "a duplicate row counts");
        assert_eq!(ContentDigest::default().checksum(), "0".repeat(64));
    }

    #[test]
    fn the_sum_carries_across_bytes() {
        let mut d = ContentDigest {
            rows: 0,
            sum: [0xff; 32],
        };
        let mut one = [0u8; 32];
        one[31] = 1;
        d.add(&one);
        assert_eq!(d.sum, [0u8; 32], "wraps modulo 2^256");
    }

    #[test]
    fn the_limb_sum_is_the_byte_by_byte_sum() {
        // The byte-by-byte sum earlier snapshots' checksums were made with.
        fn bytewise(sum: &mut [u8; 32], term: &[u8; 32]) {
            let mut carry = 0u16;
            for (s, t) in sum.iter_mut().zip(term).rev() {
                let v = u16::from(*s) + u16::from(*t) + carry;
                *s = v as u8;
                carry = v >> 8;
            }
        }
        let mut d = ContentDigest::default();
        let mut reference = [0u8; 32];
        for row in 0..2000u32 {
            let term: [u8; 32] = Sha256::digest(row.to_be_bytes()).into();
            d.add(&term);
            bytewise(&mut reference, &term);
        }
        assert_eq!(d.sum, reference);
        // A carry out of each limb into the next.
        let mut d = ContentDigest {
            rows: 0,
            sum: [0xff; 32],
        };
        d.sum[0] = 0;
        let mut one = [0u8; 32];
        one[31] = 1;
        d.add(&one);
        let mut expected = [0u8; 32];
        expected[0] = 1;
        assert_eq!(d.sum, expected);
    }
}
