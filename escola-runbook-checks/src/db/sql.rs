//! SQL text that round-trips exactly: identifier quoting, value literals built
//! from binary-protocol values, and a statement splitter for restoring.

use mysql_async::Value;

/// How a column's values are written, decided from `information_schema`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ColumnKind {
    /// Integers and YEAR: the binary protocol gives an exact integer.
    Integer,
    /// DECIMAL: the server's exact decimal text, written unquoted.
    Decimal,
    /// FLOAT/DOUBLE: the exact binary value, written with every digit needed.
    Approximate,
    /// Text in utf8mb3/utf8mb4 (including JSON, ENUM, SET): an escaped string.
    Utf8Text,
    /// Anything whose bytes must arrive untouched: BINARY, BLOB, BIT, text
    /// in other charsets (latin1...): a hex literal of the stored bytes.
    Bytes,
    /// DATE.
    Date,
    /// DATETIME and TIMESTAMP (read and written in UTC).
    DateTime,
    /// TIME, possibly negative and beyond 24 hours.
    Time,
    /// Types this module does not know (UUID, INET6, GEOMETRY...): valid
    /// UTF-8 is quoted, other bytes go as hex.
    Other,
}

impl ColumnKind {
    /// The kind for `data_type` (lower case) with character set `charset`.
    pub(crate) fn classify(data_type: &str, charset: Option<&str>) -> Self {
        match data_type {
            "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "year" => {
                ColumnKind::Integer
            }
            "decimal" | "numeric" => ColumnKind::Decimal,
            "float" | "double" | "real" | "double precision" => ColumnKind::Approximate,
            "bit" | "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => {
                ColumnKind::Bytes
            }
            "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "enum"
            | "set" | "json" => match charset {
                Some(cs) if cs.starts_with("utf8") => ColumnKind::Utf8Text,
                _ => ColumnKind::Bytes,
            },
            "date" => ColumnKind::Date,
            "datetime" | "timestamp" => ColumnKind::DateTime,
            "time" => ColumnKind::Time,
            _ => ColumnKind::Other,
        }
    }
}

/// `name` as a quoted identifier: backticks doubled, anything else kept.
pub(crate) fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// The backticked identifier at the start of `s` (doubled backticks
/// inside, as [`ident`] writes them), and what follows it.
pub(crate) fn backticked(s: &[u8]) -> Option<(&[u8], &[u8])> {
    if s.first() != Some(&b'`') {
        return None;
    }
    let mut i = 1;
    loop {
        match s.get(i)? {
            b'`' if s.get(i + 1) == Some(&b'`') => i += 2,
            b'`' => return Some(s.split_at(i + 1)),
            _ => i += 1,
        }
    }
}

/// The character set of every SQL file a snapshot writes (its `SET NAMES`).
pub(crate) const DUMP_CHARSET: &str = "utf8mb4";

/// `s` as a single-quoted string literal (backslash escapes; the dump sets a
/// sql_mode without NO_BACKSLASH_ESCAPES).
pub(crate) fn quote_str(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() + 2);
    out.push(b'\'');
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            0 => b"\\0",
            b'\'' => b"\\'",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            0x1a => b"\\Z",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'\'');
}

/// The decimal digits of `n`, written into the end of `buf` (the hot path
/// of every dump: no formatter).
#[inline]
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

/// Appends `n` in decimal.
fn push_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(decimal(n, &mut [0u8; 20]));
}

/// Appends `n` zero-padded to `width` digits.
fn push_padded(out: &mut Vec<u8>, n: u64, width: usize) {
    let mut buf = [0u8; 20];
    let digits = decimal(n, &mut buf);
    for _ in digits.len()..width {
        out.push(b'0');
    }
    out.extend_from_slice(digits);
}

/// The text of a string literal (for DDL built by hand).
pub(crate) fn quote_text(text: &str) -> String {
    let mut out = Vec::new();
    quote_str(&mut out, text.as_bytes());
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    if bytes.is_empty() {
        out.extend_from_slice(b"''");
        return;
    }
    out.reserve(bytes.len() * 2 + 2);
    out.extend_from_slice(b"0x");
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 15)]);
    }
}

/// Appends `value` (read through the binary protocol) as a SQL literal for a
/// column of `kind`.
pub(crate) fn literal(out: &mut Vec<u8>, value: &Value, kind: ColumnKind) {
    use std::io::Write;
    // Writing into a Vec cannot fail.
    match value {
        Value::NULL => out.extend_from_slice(b"NULL"),
        Value::Int(i) => {
            if *i < 0 {
                out.push(b'-');
            }
            push_u64(out, i.unsigned_abs());
        }
        Value::UInt(u) => push_u64(out, *u),
        // Doubles in the shortest form that parses back to the same bits
        // (`{:e}`). A FLOAT is widened first (exactly), so the server parses
        // the very value it stored and narrows it back without rounding.
        // Writing into a Vec cannot fail.
        Value::Float(f) => {
            let _ = write!(out, "{:e}", f64::from(*f));
        }
        Value::Double(d) => {
            let _ = write!(out, "{d:e}");
        }
        Value::Date(y, m, d, hh, mm, ss, us) => {
            out.push(b'\'');
            push_padded(out, u64::from(*y), 4);
            out.push(b'-');
            push_padded(out, u64::from(*m), 2);
            out.push(b'-');
            push_padded(out, u64::from(*d), 2);
            if kind != ColumnKind::Date {
                out.push(b' ');
                push_time(out, u64::from(*hh), *mm, *ss, *us);
            }
            out.push(b'\'');
        }
        Value::Time(negative, days, hh, mm, ss, us) => {
            out.push(b'\'');
            if *negative {
                out.push(b'-');
            }
            push_time(out, u64::from(*days) * 24 + u64::from(*hh), *mm, *ss, *us);
            out.push(b'\'');
        }
        Value::Bytes(bytes) => match kind {
            ColumnKind::Decimal | ColumnKind::Integer | ColumnKind::Approximate
                if is_number(bytes) =>
            {
                out.extend_from_slice(bytes)
            }
            ColumnKind::Utf8Text => quote_str(out, bytes),
            ColumnKind::Other if std::str::from_utf8(bytes).is_ok() => quote_str(out, bytes),
            _ => hex(out, bytes),
        },
    }
}

fn push_time(out: &mut Vec<u8>, hours: u64, mm: u8, ss: u8, us: u32) {
    push_padded(out, hours, 2);
    out.push(b':');
    push_padded(out, u64::from(mm), 2);
    out.push(b':');
    push_padded(out, u64::from(ss), 2);
    out.push(b'.');
    push_padded(out, u64::from(us), 6);
}

/// A value the dump writes unquoted as a number: digits, sign, point and
/// exponent only.
pub(crate) fn is_number(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes
            .iter()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
        && bytes.iter().any(u8::is_ascii_digit)
}

/// Splits a SQL script into statements: understands quotes, comments and the
/// `mariadb` client's `DELIMITER` command, so the same files serve our
/// restorer and the stock client.
#[derive(Debug, Default)]
pub(crate) struct Splitter {
    current: Vec<u8>,
    delimiter: Vec<u8>,
    state: State,
    escaped: bool,
    /// A statement's buffer given back once it ran, for the next one.
    spare: Option<Vec<u8>>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    #[default]
    Normal,
    Quote(u8),
    LineComment,
    BlockComment,
}

impl Splitter {
    pub(crate) fn new() -> Self {
        Splitter {
            delimiter: b";".to_vec(),
            ..Default::default()
        }
    }

    /// Feeds one line (with its newline); returns the statements it completed.
    ///
    /// Bytes are copied in runs, not one by one, and a statement's buffer
    /// starts at the size of the one before: a restore splits hundreds of
    /// megabytes of INSERTs of about the same size. Inside a quote or a
    /// comment the line is skipped with `memchr` to the byte that can end
    /// it; outside, one tight scan finds the next quote, comment start or
    /// delimiter's first byte, and only there is the delimiter compared.
    pub(crate) fn push_line(&mut self, line: &[u8], out: &mut Vec<Vec<u8>>) {
        if self.state == State::Normal && is_blank(&self.current) {
            let trimmed = trim(line);
            if trimmed.len() > 10 && trimmed[..10].eq_ignore_ascii_case(b"DELIMITER ") {
                self.delimiter = trim(&trimmed[10..]).to_vec();
                self.current.clear();
                return;
            }
        }
        // Start of the run of `line` not yet copied into `current`, unless
        // in a line comment (which is dropped).
        let mut run = Some(0);
        let mut i = 0;
        while i < line.len() {
            match self.state {
                State::Normal => {
                    let first = self.delimiter.first().copied();
                    match line[i..].iter().position(|&b| {
                        matches!(b, b'\'' | b'"' | b'`' | b'#' | b'-' | b'/') || Some(b) == first
                    }) {
                        Some(at) => i += at,
                        None => break,
                    }
                    let b = line[i];
                    if line[i..].starts_with(&self.delimiter) {
                        self.copy(line, &mut run, i);
                        self.emit(out);
                        i += self.delimiter.len();
                        run = Some(i);
                        continue;
                    }
                    match b {
                        b'\'' | b'"' | b'`' => self.state = State::Quote(b),
                        b'#' => self.state = State::LineComment,
                        b'-' if line[i..].starts_with(b"-- ") || line[i..].starts_with(b"--\n") => {
                            self.state = State::LineComment
                        }
                        b'/' if line.get(i + 1) == Some(&b'*') => {
                            self.state = State::BlockComment;
                            i += 2;
                            continue;
                        }
                        _ => {}
                    }
                    if self.state == State::LineComment {
                        self.copy(line, &mut run, i);
                    }
                }
                State::Quote(q) => {
                    if self.escaped {
                        self.escaped = false;
                    } else {
                        let next = if q == b'`' {
                            memchr::memchr(q, &line[i..])
                        } else {
                            memchr::memchr2(q, b'\\', &line[i..])
                        };
                        match next {
                            Some(at) => i += at,
                            None => break,
                        }
                        if line[i] == q {
                            self.state = State::Normal;
                        } else {
                            self.escaped = true;
                        }
                    }
                }
                State::LineComment => match memchr::memchr(b'\n', &line[i..]) {
                    Some(at) => {
                        i += at;
                        self.state = State::Normal;
                        run = Some(i);
                    }
                    None => break,
                },
                State::BlockComment => match memchr::memchr(b'*', &line[i..]) {
                    Some(at) => {
                        i += at;
                        if line.get(i + 1) == Some(&b'/') {
                            self.state = State::Normal;
                            i += 2;
                            continue;
                        }
                    }
                    None => break,
                },
            }
            i += 1;
        }
        self.copy(line, &mut run, line.len());
    }

    /// Copies `line[run..end]` into the statement, leading blanks of a
    /// statement left out, and ends the run.
    fn copy(&mut self, line: &[u8], run: &mut Option<usize>, end: usize) {
        if let Some(start) = run.take() {
            let mut part = &line[start..end];
            if self.current.is_empty() {
                let blanks = part.iter().take_while(|b| b.is_ascii_whitespace()).count();
                part = &part[blanks..];
            }
            self.current.extend_from_slice(part);
        }
    }

    /// Takes back the buffer of a statement that has run, so the next
    /// statement is written into it instead of a new allocation.
    pub(crate) fn recycle(&mut self, mut buffer: Vec<u8>) {
        buffer.clear();
        self.spare = Some(buffer);
    }

    /// Ends the statement: `out` gets it, trimmed, unless it is blank.
    fn emit(&mut self, out: &mut Vec<Vec<u8>>) {
        let size = self.current.len();
        let next = self
            .spare
            .take()
            .unwrap_or_else(|| Vec::with_capacity(size));
        let mut stmt = std::mem::replace(&mut self.current, next);
        let end = stmt
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())
            .map_or(0, |e| e + 1);
        stmt.truncate(end);
        if !stmt.is_empty() {
            out.push(stmt);
        }
    }

    /// What is left after the last delimiter, if anything but blanks.
    pub(crate) fn finish(mut self) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        self.emit(&mut out);
        out.pop()
    }
}

fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_whitespace)
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &bytes[start..end.max(start)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(v: Value, k: ColumnKind) -> String {
        let mut out = Vec::new();
        literal(&mut out, &v, k);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn floats_keep_every_bit() {
        let f = -46.633_308_410_644_53_f64 as f32;
        assert_eq!(f64::from(f), -46.633_308_410_644_53);
        let text = lit(Value::Float(f), ColumnKind::Approximate);
        let back: f64 = text.parse().unwrap();
        assert_eq!(back as f32, f);
        assert_eq!(back, f64::from(f), "{text}");
        for d in [0.1, -1.0e-300, f64::MAX, 123_456_789.123_456_78] {
            let t = lit(Value::Double(d), ColumnKind::Approximate);
            assert_eq!(t.parse::<f64>().unwrap().to_bits(), d.to_bits(), "{t}");
        }
    }

    #[test]
    fn strings_bytes_and_times() {
        assert_eq!(
            lit(
                Value::Bytes(b"a'b\\c\0\n\r\x1a".to_vec()),
                ColumnKind::Utf8Text
            ),
            r"'a\'b\\c\0\n\r\Z'"
        );
        assert_eq!(lit(Value::Bytes(vec![0, 255]), ColumnKind::Bytes), "0x00FF");
        assert_eq!(lit(Value::Bytes(vec![]), ColumnKind::Bytes), "''");
        assert_eq!(
            lit(Value::Time(true, 34, 22, 59, 59, 5), ColumnKind::Time),
            "'-838:59:59.000005'"
        );
        assert_eq!(
            lit(Value::Date(0, 0, 0, 0, 0, 0, 0), ColumnKind::Date),
            "'0000-00-00'"
        );
        assert_eq!(
            lit(Value::Bytes(b"-1.50".to_vec()), ColumnKind::Decimal),
            "-1.50"
        );
        assert_eq!(
            lit(Value::Bytes(b"1; DROP".to_vec()), ColumnKind::Decimal),
            "0x313B2044524F50"
        );
        assert_eq!(ident("a`b c"), "`a``b c`");
    }

    #[test]
    fn splitter_handles_quotes_comments_and_delimiters() {
        let script = "SET NAMES utf8mb4;\n-- a comment; with semicolon\nINSERT INTO `a;b` VALUES ('x;\\'y', \"q;\");\nDELIMITER ;;\nCREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW BEGIN SET @a = 1; SET @b = 2; END ;;\nDELIMITER ;\n/* block ; */ SELECT 1;\nSELECT 2";
        let mut s = Splitter::new();
        let mut out = Vec::new();
        for line in script.split_inclusive('\n') {
            s.push_line(line.as_bytes(), &mut out);
        }
        let last = s.finish();
        let out: Vec<String> = out
            .into_iter()
            .map(|v| String::from_utf8(v).unwrap())
            .collect();
        assert_eq!(out.len(), 4, "{out:#?}");
        assert_eq!(out[1], "INSERT INTO `a;b` VALUES ('x;\\'y', \"q;\")");
        assert!(out[2].ends_with("SET @b = 2; END"), "{}", out[2]);
        assert_eq!(out[3], "/* block ; */ SELECT 1");
        assert_eq!(last.unwrap(), b"SELECT 2");
    }

    /// The byte-at-a-time splitter `push_line` replaced, kept as the
    /// oracle of the one that skips with `memchr`.
    fn push_line_bytewise(s: &mut Splitter, line: &[u8], out: &mut Vec<Vec<u8>>) {
        if s.state == State::Normal && is_blank(&s.current) {
            let trimmed = trim(line);
            if trimmed.len() > 10 && trimmed[..10].eq_ignore_ascii_case(b"DELIMITER ") {
                s.delimiter = trim(&trimmed[10..]).to_vec();
                s.current.clear();
                return;
            }
        }
        let mut run = Some(0);
        let mut i = 0;
        while i < line.len() {
            let b = line[i];
            match s.state {
                State::Normal => {
                    if line[i..].starts_with(&s.delimiter) {
                        s.copy(line, &mut run, i);
                        s.emit(out);
                        i += s.delimiter.len();
                        run = Some(i);
                        continue;
                    }
                    match b {
                        b'\'' | b'"' | b'`' => s.state = State::Quote(b),
                        b'#' => s.state = State::LineComment,
                        b'-' if line[i..].starts_with(b"-- ") || line[i..].starts_with(b"--\n") => {
                            s.state = State::LineComment
                        }
                        b'/' if line.get(i + 1) == Some(&b'*') => {
                            s.state = State::BlockComment;
                            i += 2;
                            continue;
                        }
                        _ => {}
                    }
                    if s.state == State::LineComment {
                        s.copy(line, &mut run, i);
                    }
                }
                State::Quote(q) => {
                    if s.escaped {
                        s.escaped = false;
                    } else if b == b'\\' && q != b'`' {
                        s.escaped = true;
                    } else if b == q {
                        s.state = State::Normal;
                    }
                }
                State::LineComment => {
                    if b == b'\n' {
                        s.state = State::Normal;
                        run = Some(i);
                    }
                }
                State::BlockComment => {
                    if b == b'*' && line.get(i + 1) == Some(&b'/') {
                        s.state = State::Normal;
                        i += 2;
                        continue;
                    }
                }
            }
            i += 1;
        }
        s.copy(line, &mut run, line.len());
    }

    /// Scripts made of the pieces that change the splitter's state, in
    /// random order: the skipping splitter cuts each exactly where the
    /// byte-at-a-time one does.
    #[test]
    fn the_skipping_splitter_cuts_where_the_bytewise_one_does() {
        const PIECES: &[&str] = &[
            ";",
            ";;",
            "'",
            "\"",
            "`",
            "\\",
            "\\'",
            "#",
            "-",
            "-- ",
            "--\n",
            "/",
            "/*",
            "*",
            "*/",
            "\n",
            " ",
            "x",
            "INSERT",
            "(1,'a'),",
            "\nDELIMITER ;;\n",
            "\nDELIMITER ;\n",
            "\nDELIMITER $$\n",
            "$",
            "$$",
            "\n  delimiter //\n",
            "//",
            "é",
            "\r\n",
        ];
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..3000 {
            let len = 1 + next() % 40;
            let script: String = (0..len)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect();
            let (mut fast, mut slow) = (Splitter::new(), Splitter::new());
            let (mut fast_out, mut slow_out) = (Vec::new(), Vec::new());
            for line in script.as_bytes().split_inclusive(|&b| b == b'\n') {
                fast.push_line(line, &mut fast_out);
                push_line_bytewise(&mut slow, line, &mut slow_out);
            }
            assert_eq!(fast_out, slow_out, "{script:?}");
            assert_eq!(fast.finish(), slow.finish(), "{script:?}");
        }
    }
}
