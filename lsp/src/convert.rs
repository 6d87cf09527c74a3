//! Between cavra's byte offsets and the protocol's positions (lines and
//! UTF-16 columns, the encoding every client supports), and between file
//! names and `file://` URIs.

use cavra_engine::Span;
use lsp_types::{Position, Range, Url};
use std::path::Path;

/// A text with its line starts, to convert offsets both ways.
pub struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a str) -> LineIndex<'a> {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, starts }
    }

    pub fn position(&self, offset: usize) -> Position {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        let start = self.starts[line];
        let column: usize = self.text.get(start..offset).map_or(0, |t| t.chars().map(char::len_utf16).sum());
        Position::new(line as u32, column as u32)
    }

    pub fn range(&self, span: Span) -> Range {
        Range::new(self.position(span.start), self.position(span.end))
    }

    /// The byte offset of a position (clamped to its line and to the text).
    pub fn offset(&self, position: Position) -> usize {
        let Some(&start) = self.starts.get(position.line as usize) else { return self.text.len() };
        let line_end = self.starts.get(position.line as usize + 1).map_or(self.text.len(), |next| next - 1);
        let mut units = 0u32;
        for (i, c) in self.text[start..line_end].char_indices() {
            if units >= position.character {
                return start + i;
            }
            units += c.len_utf16() as u32;
        }
        line_end
    }

    /// The range of the whole text.
    pub fn whole(&self) -> Range {
        Range::new(Position::new(0, 0), self.position(self.text.len()))
    }
}

/// The path of a `file://` URI.
pub fn uri_path(uri: &Url) -> Option<String> {
    uri.to_file_path().ok().map(|p| p.display().to_string())
}

/// The URI of a file name a pack's diagnostics or definitions use: a path on
/// disk (a bundled module has none).
pub fn file_uri(name: &str) -> Option<Url> {
    let path = Path::new(name);
    let absolute = if path.is_absolute() { path.to_path_buf() } else { std::env::current_dir().ok()?.join(path) };
    absolute.is_file().then(|| Url::from_file_path(&absolute).ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_count_utf16_units_and_offsets_come_back() {
        let text = "pack p\nlet a = \"é😀\" + x\n";
        let index = LineIndex::new(text);
        let x = text.find('x').unwrap();
        let position = index.position(x);
        assert_eq!(position, Position::new(1, 16)); // `é` is one unit, `😀` two
        assert_eq!(index.offset(position), x);
        assert_eq!(index.offset(Position::new(9, 0)), text.len());
        assert_eq!(index.offset(Position::new(0, 99)), 6);
    }
}
