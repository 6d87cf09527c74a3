//! Embeds the bundled rule packs (`rules/`) and sample documents
//! (`examples/`) so that the binary runs its defaults from any directory.

use std::path::{Path, PathBuf};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for dir in ["rules", "examples"] {
        println!("cargo:rerun-if-changed=../{dir}");
        collect(&root.join(dir), &mut files);
    }
    files.sort();
    let mut out = String::from("/// (path relative to the repository root, contents)\npub static FILES: &[(&str, &str)] = &[\n");
    for file in &files {
        let relative = file.strip_prefix(&root).expect("below the root").to_string_lossy().replace('\\', "/");
        let absolute = file.canonicalize().expect("file exists");
        out.push_str(&format!("    ({relative:?}, include_str!({:?})),\n", absolute.to_string_lossy()));
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("bundled_files.rs");
    std::fs::write(dest, out).expect("write bundled_files.rs");
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            println!("cargo:rerun-if-changed={}", path.display());
            collect(&path, out);
        } else if matches!(path.extension().and_then(|e| e.to_str()), Some("cavra" | "toml" | "json")) {
            out.push(path);
        }
    }
}
