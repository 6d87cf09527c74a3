//! How `--help` is laid out: prose wrapped to the terminal, examples
//! printed verbatim. clap's `wrap_help` wraps a command's `after_help` at
//! the terminal width, which breaks an example's command line in the middle
//! (`--store⏎ /var/lib/cavra/cavra.db`). So each command's `Examples:` block
//! is moved out of `after_help` into its help template, whose literal text
//! clap prints as it is; the prose before it is joined into paragraphs, so
//! that clap wraps it cleanly at any width.

/// Where a command's examples begin in its `after_help`.
const EXAMPLES: &str = "Examples:\n";

/// clap's default help layout with the examples after everything else
/// (and after the prose, when there is some).
fn template(prose: bool, examples: &str) -> String {
    // `{after-help}` brings its own blank line.
    let after_args = if prose { "{after-help}" } else { "" };
    format!("{{before-help}}{{about-with-newline}}\n{{usage-heading}} {{usage}}\n\n{{all-args}}{after_args}\n\n{EXAMPLES}{examples}")
}

/// `command` and all its subcommands, laid out for the terminal.
pub(crate) fn laid_out(mut command: clap::Command) -> clap::Command {
    let names: Vec<String> = command.get_subcommands().map(|s| s.get_name().to_string()).collect();
    for name in names {
        command = command.mut_subcommand(name, laid_out);
    }
    let Some(after) = command.get_after_help().map(|s| s.to_string()) else { return command };
    let (prose, examples) = split(&after);
    let command = match examples {
        Some(examples) => command.help_template(template(!prose.is_empty(), examples)),
        None => command,
    };
    command.after_help(paragraphs(prose))
}

/// `after_help` split into the prose and the example lines (without their heading).
pub(crate) fn split(after_help: &str) -> (&str, Option<&str>) {
    if let Some(examples) = after_help.strip_prefix(EXAMPLES) {
        return ("", Some(examples));
    }
    match after_help.find(&format!("\n\n{EXAMPLES}")) {
        Some(at) => (&after_help[..at], Some(&after_help[at + 2 + EXAMPLES.len()..])),
        None => (after_help, None),
    }
}

/// Prose with the lines of each paragraph joined (clap wraps them again at
/// the terminal's width); blank lines and indented lines are kept as they are.
fn paragraphs(prose: &str) -> String {
    let mut out = String::with_capacity(prose.len());
    let mut joinable = false;
    for line in prose.lines() {
        let plain = !line.is_empty() && !line.starts_with(char::is_whitespace);
        if joinable && plain {
            out.push(' ');
        } else if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(line);
        joinable = plain;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_are_split_from_the_prose_before_them() {
        assert_eq!(split("Examples:\n  cavra test"), ("", Some("  cavra test")));
        assert_eq!(split("Some prose\nmore.\n\nExamples:\n  cavra test\n"), ("Some prose\nmore.", Some("  cavra test\n")));
        assert_eq!(split("No examples."), ("No examples.", None));
    }

    #[test]
    fn paragraphs_are_joined_and_indented_lines_kept() {
        assert_eq!(paragraphs("one\ntwo\n\nthree\n  kept\n  as is\nfour"), "one two\n\nthree\n  kept\n  as is\nfour");
    }

    /// clap's template language reads `{...}` as a tag and drops text after a `{` without a `}`.
    #[test]
    fn no_example_uses_what_the_template_language_would_change() {
        fn walk(command: &clap::Command, found: &mut Vec<String>) {
            let after = command.get_after_help().map(|a| a.to_string()).unwrap_or_default();
            if split(&after).1.is_some_and(|examples| examples.contains(['{', '}'])) {
                found.push(command.get_name().to_string());
            }
            for sub in command.get_subcommands() {
                walk(sub, found);
            }
        }
        let mut found = Vec::new();
        walk(&<crate::Cli as clap::CommandFactory>::command(), &mut found);
        assert!(found.is_empty(), "examples with braces: {found:?}");
    }
}
