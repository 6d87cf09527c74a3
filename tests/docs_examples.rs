//! The documentation's packs are real: every complete pack in a
//! ```` ```cavra ```` block of README.md and docs/*.md checks without errors
//! (what `cavra check` requires: warnings are allowed) and is printed in
//! `cavra fmt` form (formatting it changes nothing, as `cavra fmt --check`
//! requires). A block is a complete pack when its first line that is not a
//! comment starts with `pack ` (or `module `); other blocks are fragments.
//! Its `use` lines resolve as for a pack file in `docs/`: there is no module
//! there, so the bundled ones (`rules/common/...`) are used. A printed pack
//! that starts with the header comment of a bundled pack in `rules/` is that
//! pack, and must be printed whole, as it is today.
//!
//! The documents' command examples are run by `tests/docs_console.rs`.

use std::path::{Path, PathBuf};

/// The complete packs of a document, with the line of their opening fence.
fn complete_packs(markdown: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut lines = markdown.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        if line.trim() != "```cavra" {
            continue;
        }
        let body: Vec<&str> = lines.by_ref().map(|(_, l)| l).take_while(|l| l.trim() != "```").collect();
        let text = body.join("\n") + "\n";
        let first = text.lines().find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')).unwrap_or("");
        if first.starts_with("pack ") || first.starts_with("module ") {
            out.push((n + 1, text));
        }
    }
    out
}

/// The bundled packs (`rules/**/*.cavra`) by their first line, when it is a comment.
fn bundled_packs(dir: &Path, out: &mut Vec<(String, PathBuf, String)>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten() {
        let path = entry.path();
        if path.is_dir() {
            bundled_packs(&path, out);
        } else if path.extension().is_some_and(|e| e == "cavra") {
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let first = text.lines().next().unwrap_or("").to_string();
            if first.starts_with('#') {
                out.push((first, path, text));
            }
        }
    }
}

/// Where `other` (labelled `label`) first differs from the printed `pack`, as
/// a readable two-line excerpt.
fn first_difference(pack: &str, other: &str, label: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (pack.lines().collect(), other.lines().collect());
    let i = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i)).unwrap_or(0);
    format!(
        "  pack line {}:\n    printed:   {}\n    {label:<10} {}",
        i + 1,
        a.get(i).copied().unwrap_or("(end of pack)"),
        b.get(i).copied().unwrap_or("(end of pack)")
    )
}

#[test]
fn documented_packs_check_and_are_formatted() {
    let root = cavra_tests::crate_dir().join("..");
    let (mut checked, mut whole) = (0, 0);
    let mut failures = Vec::new();
    let mut bundled = Vec::new();
    bundled_packs(&root.join("rules"), &mut bundled);
    for doc in cavra_tests::documents(&root) {
        let markdown = std::fs::read_to_string(root.join(&doc)).unwrap_or_else(|e| panic!("{}: {e}", doc.display()));
        for (line, pack) in complete_packs(&markdown) {
            let name = format!("{}:{line}", doc.display());
            checked += 1;
            let first = pack.lines().next().unwrap_or("");
            if let Some((_, path, text)) = bundled.iter().find(|(header, _, _)| header == first) {
                whole += 1;
                if pack != *text {
                    let file = path.strip_prefix(&root).unwrap_or(path).display().to_string();
                    failures.push(format!("{name}: the pack printed as {file} differs from it:\n{}", first_difference(&pack, text, "the file:")));
                }
            }
            let modules = cavra_app::modules::RuleFiles::for_file(Path::new("docs/example.cavra"), None, cavra_grammar::DEFAULT_MAX_RULE_BYTES);
            if let Err(d) = cavra_engine::compile_with(&name, &pack, &modules) {
                failures.push(d.render(false));
                continue;
            }
            let ast = match cavra_grammar::parse(&name, &pack) {
                Ok(ast) => ast,
                Err(d) => {
                    failures.push(d.render(false));
                    continue;
                }
            };
            let formatted = cavra_grammar::format(&ast, &pack);
            if let Err(d) = cavra_engine::compile_with(&name, &formatted, &modules) {
                failures.push(format!("{name}: the formatted pack no longer checks:\n{}", d.render(false)));
            } else if formatted != pack {
                failures.push(format!(
                    "{name}: the pack is not in `cavra fmt` form (print what `cavra fmt` makes of it):\n{}",
                    first_difference(&pack, &formatted, "cavra fmt:")
                ));
            }
        }
    }
    println!("{checked} documented packs checked and in `cavra fmt` form ({whole} of them bundled packs, printed whole)");
    assert!(checked >= 15, "only {checked} documented packs found");
    assert!(failures.is_empty(), "{} of {checked} documented packs fail:\n{}", failures.len(), failures.join("\n"));
}
