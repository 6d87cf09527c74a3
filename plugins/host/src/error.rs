//! The host's error types. None of them ever holds a configuration value:
//! they name files, connectors, keys and environment variable names.

use std::path::PathBuf;

/// A problem with the private connector configuration file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read connector configuration {}: {reason}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why (I/O error kind).
        reason: String,
    },
    /// The file is not JSON.
    #[error("{} is not valid JSON (line {line}, column {column})", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
    },
    /// The JSON does not have the expected shape.
    #[error("{}: {problem}", path.display())]
    Shape {
        /// The file.
        path: PathBuf,
        /// What is wrong, by key name.
        problem: String,
    },
    /// An `X_env` key names an environment variable that is unset or empty.
    #[error("connector `{connector}`: key `{key}` names environment variable `{var}`, which is not set")]
    MissingEnv {
        /// The connector section.
        connector: String,
        /// The key, e.g. `url_env`.
        key: String,
        /// The variable's name (a name, not a secret).
        var: String,
    },
    /// An `X_env` key's value is not a string.
    #[error("connector `{connector}`: key `{key}` must be a string naming an environment variable")]
    EnvKeyNotString {
        /// The connector section.
        connector: String,
        /// The key.
        key: String,
    },
    /// Both `X` and `X_env` are given.
    #[error("connector `{connector}`: both `{key}` and `{key}_env` are given; use one")]
    BothInlineAndEnv {
        /// The connector section.
        connector: String,
        /// The key without `_env`.
        key: String,
    },
}

/// Errors of the plugin host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// Two plugin files claim the same provider; neither serves it.
    #[error("provider `{provider}` is claimed by two plugins: {} and {}", first.display(), second.display())]
    ProviderConflict {
        /// The provider.
        provider: String,
        /// The first file (in load order).
        first: PathBuf,
        /// The second file.
        second: PathBuf,
    },
    /// The private configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
}
