//! `cavra-plugin-child PLUGIN_PATH`: serves one plugin library over
//! line-delimited JSON on stdin/stdout, for
//! [`Isolation::Process`](cavra_plugin_host::Isolation::Process). Not meant
//! to be run by hand.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    match (args.next(), args.next()) {
        (Some(path), None) => cavra_plugin_host::run_child(&PathBuf::from(path)),
        _ => {
            eprintln!("usage: cavra-plugin-child PLUGIN_PATH (started by the cavra plugin host)");
            ExitCode::from(2)
        }
    }
}
