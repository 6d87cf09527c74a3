//! The documentation's examples are real: every complete pack in a
//! ```` ```cavra ```` block of README.md and docs/language.md checks without
//! errors, and formatting it keeps it equivalent.

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
        if first.starts_with("pack ") {
            out.push((n + 1, text));
        }
    }
    out
}

#[test]
fn documented_packs_check_and_format() {
    let root = cavra_tests::crate_dir().join("..");
    let mut checked = 0;
    let mut failures = Vec::new();
    for doc in ["README.md", "docs/language.md"] {
        let markdown = std::fs::read_to_string(root.join(doc)).unwrap();
        for (line, pack) in complete_packs(&markdown) {
            let name = format!("{doc}:{line}");
            match cavra_engine::compile(&name, &pack) {
                Ok(_) => {}
                Err(d) => failures.push(d.render(false)),
            }
            if let Ok(ast) = cavra_grammar::parse(&name, &pack) {
                let formatted = cavra_grammar::format(&ast, &pack);
                if let Err(d) = cavra_engine::compile(&name, &formatted) {
                    failures.push(format!("{name}: the formatted pack no longer checks:\n{}", d.render(false)));
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} documented packs found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
