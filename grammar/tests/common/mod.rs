//! Helpers shared by the grammar's integration tests.

use cavra_grammar::ast::Pack;

/// The `Debug` text of a pack with every `Span { .. }` replaced by `Span`.
pub fn normalized(pack: &Pack) -> String {
    let text = format!("{pack:?}");
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(i) = rest.find("Span { start: ") {
        out.push_str(&rest[..i]);
        out.push_str("Span");
        let after = &rest[i..];
        let close = after.find('}').expect("a span closes");
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

pub fn comment_texts(pack: &Pack) -> Vec<String> {
    let mut texts: Vec<String> = pack.comments.iter().map(|c| c.text.clone()).collect();
    texts.sort();
    texts
}
