//! pulldown-cmark's event stream folded into a small block tree that keeps
//! every element's byte range in the source, so the importer can say which
//! line a step came from and the exporter can tick that exact `[ ]`.

use std::ops::Range;

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};

/// Deeper nesting than this (lists in quotes in lists...) is skipped with a
/// warning rather than recursed into, so hostile input cannot exhaust the
/// stack.
pub(crate) const MAX_DEPTH: usize = 48;

/// One inline piece of a paragraph, heading or tight list item.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum InlineKind {
    Text(String),
    Code(String),
    Break,
    Html(String),
    TaskMarker(bool),
    StrikeStart,
    StrikeEnd,
    /// Emphasis, strong, super/subscript: invisible in titles.
    Style,
    LinkStart(String),
    LinkEnd,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Inline {
    pub(crate) kind: InlineKind,
    pub(crate) range: Range<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Block {
    Heading {
        level: u8,
        inlines: Vec<Inline>,
        range: Range<usize>,
    },
    Paragraph {
        inlines: Vec<Inline>,
    },
    List {
        items: Vec<Item>,
    },
    Code {
        /// The info string's first word, lowercased; `None` for indented
        /// blocks, `Some("")` for a fence without a language.
        lang: Option<String>,
        text: String,
        range: Range<usize>,
    },
    Quote {
        blocks: Vec<Block>,
    },
    Html {
        text: String,
        range: Range<usize>,
    },
    /// A table: its header cells and body rows.
    Table {
        head: Vec<Cell>,
        rows: Vec<Row>,
        range: Range<usize>,
    },
    /// Rules, footnotes: not steps.
    Other,
    /// Nesting beyond [`MAX_DEPTH`], skipped.
    TooDeep {
        range: Range<usize>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Item {
    pub(crate) range: Range<usize>,
    pub(crate) blocks: Vec<Block>,
}

/// One body row of a table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub(crate) cells: Vec<Cell>,
    pub(crate) range: Range<usize>,
}

/// One table cell: its inlines and its bytes between the pipes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cell {
    pub(crate) inlines: Vec<Inline>,
    pub(crate) range: Range<usize>,
}

/// The document as a block tree.
pub(crate) fn parse(text: &str) -> Vec<Block> {
    let options = Options::ENABLE_TASKLISTS
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES;
    let events: Vec<(Event<'_>, Range<usize>)> =
        Parser::new_ext(text, options).into_offset_iter().collect();
    let mut builder = Builder { events, pos: 0 };
    builder.blocks(0)
}

struct Builder<'a> {
    events: Vec<(Event<'a>, Range<usize>)>,
    pos: usize,
}

fn inline_of(event: &Event<'_>) -> Option<InlineKind> {
    Some(match event {
        Event::Text(t) => InlineKind::Text(t.to_string()),
        Event::Code(t) | Event::InlineMath(t) | Event::DisplayMath(t) => {
            InlineKind::Code(t.to_string())
        }
        Event::SoftBreak | Event::HardBreak => InlineKind::Break,
        Event::InlineHtml(t) => InlineKind::Html(t.to_string()),
        Event::TaskListMarker(checked) => InlineKind::TaskMarker(*checked),
        Event::FootnoteReference(_) => InlineKind::Style,
        Event::Start(Tag::Strikethrough) => InlineKind::StrikeStart,
        Event::End(TagEnd::Strikethrough) => InlineKind::StrikeEnd,
        Event::Start(Tag::Link { dest_url, .. }) => InlineKind::LinkStart(dest_url.to_string()),
        Event::End(TagEnd::Link) => InlineKind::LinkEnd,
        Event::Start(
            Tag::Emphasis | Tag::Strong | Tag::Superscript | Tag::Subscript | Tag::Image { .. },
        )
        | Event::End(
            TagEnd::Emphasis
            | TagEnd::Strong
            | TagEnd::Superscript
            | TagEnd::Subscript
            | TagEnd::Image,
        ) => InlineKind::Style,
        _ => return None,
    })
}

impl Builder<'_> {
    /// Blocks until the end of the enclosing container (its `End` event is
    /// consumed) or of the document.
    fn blocks(&mut self, depth: usize) -> Vec<Block> {
        let mut out = Vec::new();
        while let Some((event, range)) = self.events.get(self.pos) {
            let range = range.clone();
            if inline_of(event).is_some() {
                let inlines = self.inlines();
                out.push(Block::Paragraph { inlines });
                continue;
            }
            match event {
                Event::End(_) => {
                    self.pos += 1;
                    return out;
                }
                Event::Start(tag) => {
                    let block = match tag {
                        Tag::Paragraph => {
                            self.pos += 1;
                            let inlines = self.inlines();
                            self.skip_end();
                            Block::Paragraph { inlines }
                        }
                        Tag::Heading { level, .. } => {
                            let level = *level as u8;
                            self.pos += 1;
                            let inlines = self.inlines();
                            self.skip_end();
                            Block::Heading {
                                level,
                                inlines,
                                range,
                            }
                        }
                        Tag::List(_) | Tag::BlockQuote(_) | Tag::Item if depth >= MAX_DEPTH => {
                            self.skip_balanced();
                            Block::TooDeep { range }
                        }
                        Tag::List(_) => {
                            self.pos += 1;
                            Block::List {
                                items: self.items(depth + 1),
                            }
                        }
                        Tag::Item => {
                            // An item outside a list cannot happen; keep its
                            // content rather than lose it.
                            self.pos += 1;
                            Block::Quote {
                                blocks: self.blocks(depth + 1),
                            }
                        }
                        Tag::BlockQuote(_) => {
                            self.pos += 1;
                            Block::Quote {
                                blocks: self.blocks(depth + 1),
                            }
                        }
                        Tag::CodeBlock(kind) => {
                            let lang = match kind {
                                CodeBlockKind::Fenced(info) => Some(
                                    info.split(|c: char| c.is_whitespace() || c == ',' || c == '{')
                                        .next()
                                        .unwrap_or("")
                                        .to_lowercase(),
                                ),
                                CodeBlockKind::Indented => None,
                            };
                            self.pos += 1;
                            let text = self.texts();
                            Block::Code { lang, text, range }
                        }
                        Tag::Table(_) => {
                            self.pos += 1;
                            self.table(range)
                        }
                        Tag::HtmlBlock => {
                            self.pos += 1;
                            let text = self.texts();
                            Block::Html { text, range }
                        }
                        _ => {
                            self.skip_balanced();
                            Block::Other
                        }
                    };
                    out.push(block);
                }
                Event::Html(t) => {
                    out.push(Block::Html {
                        text: t.to_string(),
                        range,
                    });
                    self.pos += 1;
                }
                _ => {
                    self.pos += 1;
                    out.push(Block::Other);
                }
            }
        }
        out
    }

    fn items(&mut self, depth: usize) -> Vec<Item> {
        let mut items = Vec::new();
        while let Some((event, range)) = self.events.get(self.pos) {
            let range = range.clone();
            match event {
                Event::Start(Tag::Item) => {
                    self.pos += 1;
                    let blocks = self.blocks(depth);
                    items.push(Item { range, blocks });
                }
                Event::End(_) => {
                    self.pos += 1;
                    break;
                }
                _ => self.pos += 1,
            }
        }
        items
    }

    /// A table's head and rows, up to its end (consumed).
    fn table(&mut self, range: Range<usize>) -> Block {
        let mut head = Vec::new();
        let mut rows = Vec::new();
        while let Some((event, row_range)) = self.events.get(self.pos) {
            let row_range = row_range.clone();
            match event {
                Event::Start(Tag::TableHead) => {
                    self.pos += 1;
                    head = self.cells();
                }
                Event::Start(Tag::TableRow) => {
                    self.pos += 1;
                    let cells = self.cells();
                    rows.push(Row {
                        cells,
                        range: row_range,
                    });
                }
                Event::End(TagEnd::Table) => {
                    self.pos += 1;
                    break;
                }
                Event::Start(_) => self.skip_balanced(),
                _ => self.pos += 1,
            }
        }
        Block::Table { head, rows, range }
    }

    /// The cells of a head or row, up to its end (consumed).
    fn cells(&mut self) -> Vec<Cell> {
        let mut cells = Vec::new();
        while let Some((event, range)) = self.events.get(self.pos) {
            let range = range.clone();
            match event {
                Event::Start(Tag::TableCell) => {
                    self.pos += 1;
                    let inlines = self.inlines();
                    // Anything a cell holds that is not inline text.
                    while let Some((event, _)) = self.events.get(self.pos) {
                        match event {
                            Event::End(TagEnd::TableCell) => {
                                self.pos += 1;
                                break;
                            }
                            Event::Start(_) => self.skip_balanced(),
                            _ => self.pos += 1,
                        }
                    }
                    cells.push(Cell { inlines, range });
                }
                Event::End(_) => {
                    self.pos += 1;
                    break;
                }
                Event::Start(_) => self.skip_balanced(),
                _ => self.pos += 1,
            }
        }
        cells
    }

    fn inlines(&mut self) -> Vec<Inline> {
        let mut out = Vec::new();
        while let Some((event, range)) = self.events.get(self.pos) {
            let Some(kind) = inline_of(event) else { break };
            out.push(Inline {
                kind,
                range: range.clone(),
            });
            self.pos += 1;
        }
        out
    }

    /// Text and HTML events up to the container's end, which is consumed.
    fn texts(&mut self) -> String {
        let mut text = String::new();
        while let Some((event, _)) = self.events.get(self.pos) {
            self.pos += 1;
            match event {
                Event::Text(t) | Event::Html(t) => text.push_str(t),
                Event::End(_) => break,
                _ => {}
            }
        }
        text
    }

    fn skip_end(&mut self) {
        if matches!(self.events.get(self.pos), Some((Event::End(_), _))) {
            self.pos += 1;
        }
    }

    /// Skips a whole element from its `Start`, however deep, without
    /// recursion.
    fn skip_balanced(&mut self) {
        let mut depth = 0usize;
        while let Some((event, _)) = self.events.get(self.pos) {
            self.pos += 1;
            match event {
                Event::Start(_) => depth += 1,
                Event::End(_) => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return;
                    }
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tight_items_keep_their_inlines_and_ranges() {
        let text = "# T\n\n- [ ] one\n  - [x] two\n";
        let blocks = parse(text);
        let Block::List { items } = &blocks[1] else {
            panic!("{blocks:?}")
        };
        let Block::Paragraph { inlines } = &items[0].blocks[0] else {
            panic!()
        };
        assert_eq!(inlines[0].kind, InlineKind::TaskMarker(false));
        assert_eq!(&text[inlines[0].range.clone()], "[ ]");
        let Block::List { items: nested } = &items[0].blocks[1] else {
            panic!()
        };
        let Block::Paragraph { inlines } = &nested[0].blocks[0] else {
            panic!()
        };
        assert_eq!(inlines[0].kind, InlineKind::TaskMarker(true));
    }

    #[test]
    fn deep_nesting_is_cut_off() {
        let text = ">".repeat(10_000) + " deep";
        let blocks = parse(&text);
        fn depth(b: &[Block]) -> usize {
            b.iter()
                .map(|b| match b {
                    Block::Quote { blocks } => 1 + depth(blocks),
                    _ => 0,
                })
                .max()
                .unwrap_or(0)
        }
        assert!(depth(&blocks) <= MAX_DEPTH);
    }
}
