use std::io::IsTerminal;

/// mimalloc rather than the system allocator: it keeps freed memory for
/// reuse, where glibc hands large blocks back to the kernel and the next
/// plan of many routes pays for the page faults again (benches/README.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The checker and evaluator recurse over the rule text's syntax tree; the
/// parser bounds its depth, and a generous stack keeps a margin above that.
const STACK_SIZE: usize = 64 * 1024 * 1024;

fn main() {
    let worker = std::thread::Builder::new().stack_size(STACK_SIZE).spawn(|| {
        let is_terminal = std::io::stderr().is_terminal();
        // Unlocked handles: `cavra api` logs from its worker threads while this one waits.
        match own_stdout() {
            Some(mut out) => cavra::run(std::env::args_os(), &mut out, &mut std::io::stderr(), is_terminal),
            None => cavra::run(std::env::args_os(), &mut std::io::stdout(), &mut std::io::stderr(), is_terminal),
        }
    });
    let code = match worker.map(|w| w.join()) {
        Ok(Ok(code)) => code,
        _ => {
            eprintln!("error: cavra stopped unexpectedly; please report this with the command you ran");
            cavra::exit::INTERNAL
        }
    };
    std::process::exit(code);
}

/// cavra's own output goes to a copy of the process's stdout, and stdout
/// itself (fd 1) to stderr: a plugin running in this process that prints
/// reaches the log, never the `--json` a script reads. Not for the plugin
/// child, whose stdout is its protocol (it redirects its plugin itself), nor
/// for `cavra lsp`, whose stdout is the language server protocol.
#[cfg(unix)]
fn own_stdout() -> Option<std::fs::File> {
    use std::os::fd::AsFd;
    // `cavra lsp` speaks its protocol on stdout (and loads no plugin).
    if std::env::args_os().nth(1).is_some_and(|a| a == "plugin-child" || a == "lsp") {
        return None;
    }
    let saved = std::io::stdout().as_fd().try_clone_to_owned().ok()?;
    rustix::stdio::dup2_stdout(std::io::stderr().as_fd()).ok()?;
    Some(std::fs::File::from(saved))
}

#[cfg(not(unix))]
fn own_stdout() -> Option<std::fs::File> {
    None
}
