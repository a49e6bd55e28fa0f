//! Plain-text tables for the listings (`history`, `snapshot list`): each
//! column as wide as its widest cell, so a long runbook or database name
//! never pushes the columns after it out of line.

/// Where a column's cells sit: names left, figures right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// The header and rows, one line each; the last column is not padded, so
/// no line ends in spaces.
pub fn render<const N: usize>(
    header: [&str; N],
    align: [Align; N],
    rows: &[[String; N]],
) -> String {
    use std::fmt::Write;
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for cells in
        std::iter::once(header).chain(rows.iter().map(|r| r.each_ref().map(String::as_str)))
    {
        for (i, cell) in cells.iter().enumerate() {
            let w = widths[i];
            let _ = match (i + 1 == N, align[i]) {
                (_, Align::Right) => write!(out, "{cell:>w$}"),
                (true, Align::Left) => write!(out, "{cell}"),
                (false, Align::Left) => write!(out, "{cell:<w$}"),
            };
            if i + 1 < N {
                out.push(' ');
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_fit_their_widest_cell_and_figures_align_right() {
        let rows = [
            [
                "a-very-long-snapshot-name".to_owned(),
                "7".to_owned(),
                "ok".to_owned(),
            ],
            [
                "b".to_owned(),
                "1234".to_owned(),
                "damaged: file 3".to_owned(),
            ],
        ];
        let text = render(
            ["SNAPSHOT", "ROWS", "STATUS"],
            [Align::Left, Align::Right, Align::Left],
            &rows,
        );
        assert_eq!(
            text,
            "SNAPSHOT                  ROWS STATUS\n\
             a-very-long-snapshot-name    7 ok\n\
             b                         1234 damaged: file 3\n"
        );
    }
}
