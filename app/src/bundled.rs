//! The rule packs and sample documents embedded in the binary (see build.rs).

include!(concat!(env!("OUT_DIR"), "/bundled_files.rs"));

/// The contents of a bundled file, by its path relative to the repository root.
pub fn get(path: &str) -> Option<&'static str> {
    FILES.iter().find(|(p, _)| *p == path).map(|(_, text)| *text)
}

/// Bundled paths ending with `suffix`, sorted.
pub fn list(suffix: &str) -> Vec<&'static str> {
    FILES.iter().map(|(p, _)| *p).filter(|p| p.ends_with(suffix)).collect()
}
