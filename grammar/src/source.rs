//! Reading a rule file from disk, bounded: only a regular file is opened (a
//! FIFO or a device would block or never end), a file over the byte limit is
//! refused before it is read, and text that is not UTF-8 is refused with the
//! `line:col` of its first bad byte.

use std::fmt;
use std::io::Read;
use std::path::Path;

/// The largest rule file read unless the caller says otherwise: 4 MiB, far
/// above any real pack (the bundled ones are a few KB) and small enough to
/// parse in seconds.
pub const DEFAULT_MAX_RULE_BYTES: u64 = 4 * 1024 * 1024;

/// Why a rule file was not read. [`fmt::Display`] starts with the file (and,
/// for bad UTF-8, `:line:col`), as the other diagnostics do.
#[derive(Debug)]
pub struct ReadError {
    /// The path as given, for messages.
    pub file: String,
    pub kind: ReadErrorKind,
}

#[derive(Debug)]
pub enum ReadErrorKind {
    NotFound,
    /// A directory, FIFO, socket or device: `what` names it.
    NotRegular {
        what: &'static str,
    },
    /// `size` is the file's size, or what was read when it grew while being read.
    TooLarge {
        size: u64,
        limit: u64,
    },
    /// The first byte that does not start (or continue) a UTF-8 sequence, with
    /// its 1-based line and column (in characters, as diagnostics count them).
    NotUtf8 {
        line: usize,
        column: usize,
        byte: u8,
    },
    Io(std::io::Error),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = &self.file;
        match &self.kind {
            ReadErrorKind::NotFound => write!(f, "{file}: no such file"),
            ReadErrorKind::NotRegular { what } => write!(f, "{file}: not a regular file ({what}); rule files must be regular files"),
            ReadErrorKind::TooLarge { size, limit } => write!(f, "{file}: {size} bytes is over the limit of {limit} bytes for a rule file"),
            ReadErrorKind::NotUtf8 { line, column, byte } => {
                write!(f, "{file}:{line}:{column}: not UTF-8 text (byte 0x{byte:02x}); rule files must be UTF-8")
            }
            ReadErrorKind::Io(e) => write!(f, "{file}: cannot read: {e}"),
        }
    }
}

impl std::error::Error for ReadError {}

/// Reads the rule file at `path` as UTF-8 text of at most `max_bytes` bytes.
///
/// The file's metadata is checked before it is opened, so a FIFO, a device
/// or a directory is refused without blocking, and a file over the limit is
/// refused without reading it. Reading stops one byte past the limit, so a
/// file that grows while it is read costs no more than that.
pub fn read_rule_file(path: &Path, max_bytes: u64) -> Result<String, ReadError> {
    let error = |kind| ReadError { file: path.display().to_string(), kind };
    let io = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => error(ReadErrorKind::NotFound),
        _ => error(ReadErrorKind::Io(e)),
    };
    let metadata = std::fs::metadata(path).map_err(io)?;
    if !metadata.is_file() {
        return Err(error(ReadErrorKind::NotRegular { what: file_kind(&metadata) }));
    }
    if metadata.len() > max_bytes {
        return Err(error(ReadErrorKind::TooLarge { size: metadata.len(), limit: max_bytes }));
    }
    let file = std::fs::File::open(path).map_err(io)?;
    // The path may have been replaced between the two looks: check what was opened.
    let opened = file.metadata().map_err(io)?;
    if !opened.is_file() {
        return Err(error(ReadErrorKind::NotRegular { what: file_kind(&opened) }));
    }
    let capacity = usize::try_from(opened.len().min(max_bytes)).unwrap_or(0);
    let mut bytes = Vec::with_capacity(capacity);
    file.take(max_bytes.saturating_add(1)).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > max_bytes {
        return Err(error(ReadErrorKind::TooLarge { size: bytes.len() as u64, limit: max_bytes }));
    }
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let bytes = e.into_bytes();
        let byte = bytes.get(valid).copied().unwrap_or_default();
        // Everything before `valid` is UTF-8 by definition of `valid_up_to`.
        let before = std::str::from_utf8(&bytes[..valid]).unwrap_or_default();
        let (line, column) = crate::diagnostic::line_col(before, valid);
        error(ReadErrorKind::NotUtf8 { line, column, byte })
    })
}

/// What a path that is not a regular file is, in words.
fn file_kind(metadata: &std::fs::Metadata) -> &'static str {
    let kind = metadata.file_type();
    if kind.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO";
        }
        if kind.is_socket() {
            return "a socket";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
    }
    "not a file"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("cavra-grammar-source-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn reads_text_within_the_limit() {
        let path = temp("ok.cavra", b"pack ok\n");
        assert_eq!(read_rule_file(&path, 8).unwrap(), "pack ok\n");
        let e = read_rule_file(&path, 7).unwrap_err();
        assert!(matches!(e.kind, ReadErrorKind::TooLarge { size: 8, limit: 7 }), "{e}");
    }

    #[test]
    fn bad_utf8_is_placed_by_line_and_column() {
        let path = temp("bad.cavra", b"pack p\nlet \xc3\xa9t\xc3\xa9 = \"\xff\"\n");
        let e = read_rule_file(&path, DEFAULT_MAX_RULE_BYTES).unwrap_err();
        // `é` is one column: `let été = "` is 11 characters.
        assert!(matches!(e.kind, ReadErrorKind::NotUtf8 { line: 2, column: 12, byte: 0xff }), "{e:?}");
        assert!(e.to_string().ends_with("bad.cavra:2:12: not UTF-8 text (byte 0xff); rule files must be UTF-8"), "{e}");
    }

    #[test]
    fn directories_and_missing_files_are_refused() {
        let dir = std::env::temp_dir();
        assert!(read_rule_file(&dir, 10).unwrap_err().to_string().contains("not a regular file (a directory)"));
        assert!(matches!(read_rule_file(&dir.join("cavra-no-such-file.cavra"), 10).unwrap_err().kind, ReadErrorKind::NotFound));
    }
}
