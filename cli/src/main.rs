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
        cavra::run(std::env::args_os(), &mut std::io::stdout(), &mut std::io::stderr(), is_terminal)
    });
    let code = match worker.map(|w| w.join()) {
        Ok(Ok(code)) => code,
        _ => {
            eprintln!("error: cavra stopped unexpectedly; please report this with the command you ran");
            70
        }
    };
    std::process::exit(code);
}
