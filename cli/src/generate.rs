//! `cavra completions` and `cavra manpage`: shell completion scripts and
//! roff man pages generated from the clap definitions, so they always list
//! the commands and flags this binary has.

use crate::authoring::say;
use crate::{exit, Io};
use clap::ValueEnum;
use std::path::Path;

/// The shells `cavra completions` writes a script for.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub(crate) enum Shell {
    Bash,
    Zsh,
    Fish,
}

impl From<Shell> for clap_complete::Shell {
    fn from(shell: Shell) -> clap_complete::Shell {
        match shell {
            Shell::Bash => clap_complete::Shell::Bash,
            Shell::Zsh => clap_complete::Shell::Zsh,
            Shell::Fish => clap_complete::Shell::Fish,
        }
    }
}

/// Prints the completion script for `shell`.
pub(crate) fn completions(io: &mut Io, mut command: clap::Command, shell: Shell) -> i32 {
    // Into memory first: clap_complete panics when its writer fails (a
    // closed pipe, `cavra completions bash | head`); output is best effort,
    // as for every command.
    let mut script = Vec::new();
    clap_complete::generate(clap_complete::Shell::from(shell), &mut command, "cavra", &mut script);
    let _ = io.out.write_all(&script);
    exit::OK
}

/// Prints cavra(1), or with `dir` writes it and a page per subcommand
/// (`cavra-runtime-go-rollback-readiness.1`, ...) into that folder.
pub(crate) fn manpage(io: &mut Io, command: clap::Command, dir: Option<&Path>) -> i32 {
    let written = match dir {
        None => {
            let page = page(command);
            let _ = io.out.write_all(&page);
            Ok(())
        }
        Some(dir) => {
            // As `clap_mangen::generate_to`, with the examples kept verbatim.
            let mut command = command.disable_help_subcommand(true);
            command.build();
            std::fs::create_dir_all(dir)
                .and_then(|()| write_pages(command, dir))
                .map_err(|e| format!("--dir {}: cannot write the man pages: {e}", dir.display()))
        }
    };
    match written {
        Ok(()) => exit::OK,
        Err(message) => {
            say!(io.err, "error: {message}");
            exit::USAGE
        }
    }
}

/// Writes the page of `command` and of each visible subcommand, recursively.
fn write_pages(command: clap::Command, dir: &Path) -> std::io::Result<()> {
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
        write_pages(sub, dir)?;
    }
    let name = clap_mangen::Man::new(command.clone()).get_filename();
    std::fs::write(dir.join(name), page(command))
}

/// One command's man page. clap_mangen gives each line of the text after
/// the options its own roff text line, which `man` fills into paragraphs:
/// the example lines are put in a no-fill block (`.nf` ... `.fi`), so that
/// `man` prints them as written, as `--help` does.
fn page(command: clap::Command) -> Vec<u8> {
    let mut roff = Vec::new();
    // Rendering into memory cannot fail.
    let _ = clap_mangen::Man::new(command).render(&mut roff);
    let mut out = String::with_capacity(roff.len() + 16);
    let mut examples = false;
    for line in String::from_utf8_lossy(&roff).lines() {
        if examples && line.starts_with(".SH") {
            out.push_str(".fi\n");
            examples = false;
        }
        out.push_str(line);
        out.push('\n');
        if line == "Examples:" {
            out.push_str(".nf\n");
            examples = true;
        }
    }
    if examples {
        out.push_str(".fi\n");
    }
    out.into_bytes()
}
