//! Warnings: each names the line of what it is about; the document-level
//! ones (nothing imported, an empty phase) are added once the walk is done.

use super::importer::Importer;
use crate::formats::markdown::imported::ImportWarning;

impl Importer<'_> {
    pub(super) fn warn(&mut self, offset: usize, message: impl Into<String>) {
        let line = self.line_of(offset);
        self.warnings.push(ImportWarning {
            line,
            message: message.into(),
        });
    }

    /// Says so when the document gave nothing to import, and for each
    /// phase without any step.
    pub(super) fn warn_empty_parts(&mut self) {
        if self.phases.is_empty() {
            self.warnings.push(ImportWarning {
                line: 1,
                message: "the document has no heading and no list item: nothing to import".into(),
            });
        }
        for (p, line) in self.phases.iter().zip(&self.phase_lines) {
            if p.steps.is_empty() {
                self.warnings.push(ImportWarning {
                    line: *line,
                    message: format!(
                        "section `{}` has no item: imported as an empty phase",
                        p.title
                    ),
                });
            }
        }
    }
}
