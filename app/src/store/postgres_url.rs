//! A PostgreSQL connection URL, kept private: what it says is parsed into a
//! client configuration and a TLS setting, and all that is ever shown of it
//! is `postgres://…/DBNAME`. Every error text a connection produces goes
//! through [`PostgresUrl::redact`] before it leaves the store.

use super::{Cause, StoreError};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// How the connection is protected (libpq's `sslmode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TlsMode {
    /// `disable`: plain TCP.
    Disable,
    /// `allow` / `prefer` (the default): TLS when the server offers it, certificate not verified.
    Prefer,
    /// `require`: TLS or no connection, certificate not verified (libpq's meaning).
    Require,
    /// `verify-ca`: TLS with a certificate signed by `sslrootcert`.
    VerifyCa,
    /// `verify-full`: as `verify-ca`, and the certificate names the host.
    VerifyFull,
}

/// A `postgres://` or `postgresql://` URL given as `--store` / `CAVRA_STORE`.
#[derive(Clone)]
pub struct PostgresUrl {
    raw: String,
}

/// Whether `text` names a PostgreSQL store rather than a SQLite file.
pub fn is_postgres_url(text: &str) -> bool {
    let lower = text.get(..13).unwrap_or(text).to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// Parsed for connecting: the client configuration (without TLS settings)
/// and how TLS is used.
pub(crate) struct Connection {
    pub(crate) config: postgres::Config,
    pub(crate) tls: TlsMode,
    pub(crate) root_certificates: Option<PathBuf>,
}

/// libpq's default for the file of trusted certificate authorities.
fn default_root_certificates() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".postgresql/root.crt"))
}

/// The connect timeout when the URL sets none (libpq waits forever).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl PostgresUrl {
    pub fn new(raw: impl Into<String>) -> PostgresUrl {
        PostgresUrl { raw: raw.into() }
    }

    /// How the store is named in messages: `postgres://…/DBNAME`.
    pub fn shown(&self) -> String {
        let after_scheme = self.raw.split_once("://").map_or("", |(_, rest)| rest);
        let database = after_scheme.split_once('/').map_or("", |(_, rest)| rest.split(['?', '#']).next().unwrap_or_default());
        // A database name is the operator's own word, but keep it printable and short.
        let database: String = database.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '%')).take(63).collect();
        format!("postgres://…/{database}")
    }

    /// The URL parsed: `sslmode` and `sslrootcert` are taken out and
    /// handled here (the client knows only disable/prefer/require); the rest
    /// is the client's own syntax. Errors never quote the URL.
    pub(crate) fn connection(&self) -> Result<Connection, StoreError> {
        let invalid = |message: String| StoreError::Open { path: self.shown(), source: Cause(message) };
        let (base, query) = self.raw.split_once('?').unwrap_or((&self.raw, ""));
        let mut tls = TlsMode::Prefer;
        let mut root_certificates = None;
        let mut rest: Vec<&str> = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "sslmode" => {
                    tls = match value {
                        "disable" => TlsMode::Disable,
                        "allow" | "prefer" => TlsMode::Prefer,
                        "require" => TlsMode::Require,
                        "verify-ca" => TlsMode::VerifyCa,
                        "verify-full" => TlsMode::VerifyFull,
                        _ => return Err(invalid("sslmode must be disable, allow, prefer, require, verify-ca or verify-full".into())),
                    }
                }
                "sslrootcert" => root_certificates = Some(PathBuf::from(percent_decoded(value))),
                _ => rest.push(pair),
            }
        }
        let text = if rest.is_empty() { base.to_string() } else { format!("{base}?{}", rest.join("&")) };
        // The client's parse errors name the parameter at most ("invalid
        // value for option `port`"), never its value.
        let mut config = postgres::Config::from_str(&text).map_err(|e| invalid(self.redact(&chain(&e))))?;
        if config.get_hosts().is_empty() {
            return Err(invalid("the URL names no host".into()));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        config.ssl_mode(match tls {
            TlsMode::Disable => postgres::config::SslMode::Disable,
            TlsMode::Prefer => postgres::config::SslMode::Prefer,
            TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => postgres::config::SslMode::Require,
        });
        if matches!(tls, TlsMode::VerifyCa | TlsMode::VerifyFull) && root_certificates.is_none() {
            root_certificates = default_root_certificates();
        }
        Ok(Connection { config, tls, root_certificates })
    }

    /// The words of this URL that are private (user, password, hosts), longest first.
    fn secrets(&self) -> Vec<String> {
        let mut words = Vec::new();
        if let Some((_, rest)) = self.raw.split_once("://") {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
            let (credentials, hosts) = authority.rsplit_once('@').map_or(("", authority), |(c, h)| (c, h));
            let (user, password) = credentials.split_once(':').unwrap_or((credentials, ""));
            words.push(percent_decoded(user));
            words.push(percent_decoded(password));
            words.push(user.to_string());
            words.push(password.to_string());
            for host in hosts.split(',') {
                let host = if host.starts_with('[') {
                    host.split(']').next().unwrap_or_default().trim_start_matches('[')
                } else {
                    host.split(':').next().unwrap_or_default()
                };
                words.push(percent_decoded(host));
            }
        }
        // Parameters can carry them too (`?user=...&password=...&host=...`).
        if let Some((_, query)) = self.raw.split_once('?') {
            for pair in query.split('&') {
                if let Some((key, value)) = pair.split_once('=') {
                    if matches!(key, "user" | "password" | "host" | "hostaddr") {
                        words.push(percent_decoded(value));
                    }
                }
            }
        }
        words.retain(|w| !w.is_empty());
        words.sort_by_key(|w| std::cmp::Reverse(w.len()));
        words.dedup();
        words
    }

    /// `text` without any of the URL's private words: each is replaced by
    /// `…` wherever it stands as a whole word (letters, digits and `_` make
    /// words), so a user named `cavra` hides in `user "cavra"` but leaves
    /// `cavra_schema` as it is.
    pub(crate) fn redact(&self, text: &str) -> String {
        let mut out = text.replace(&self.raw, &self.shown());
        for word in self.secrets() {
            out = replace_whole(&out, &word, "…");
        }
        out
    }

    /// An error of the client, as a [`Cause`] without private words.
    pub(crate) fn cause(&self, error: &dyn std::error::Error) -> Cause {
        Cause(self.redact(&chain(error)))
    }
}

/// `text` with each whole-word occurrence of `word` replaced.
fn replace_whole(text: &str, word: &str, with: &str) -> String {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(found) = rest.find(word) {
        let (before, after) = (&rest[..found], &rest[found + word.len()..]);
        let whole = !before.chars().next_back().is_some_and(is_word) && !after.chars().next().is_some_and(is_word);
        out.push_str(before);
        out.push_str(if whole { with } else { word });
        rest = after;
    }
    out.push_str(rest);
    out
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown())
    }
}

/// An error and its causes, `a: b: c` (the client's own text says only
/// "db error" and keeps the server's message in its source).
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
        if let (b'%', Some(byte)) = (bytes[i], hex) {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_database_is_shown() {
        let url = PostgresUrl::new("postgres://release_bot:s3cr3t-canary@db.internal.example:5433/cavra_prod?sslmode=require");
        assert_eq!(url.shown(), "postgres://…/cavra_prod");
        assert_eq!(format!("{url:?}"), "postgres://…/cavra_prod");
        assert_eq!(PostgresUrl::new("postgresql://h").shown(), "postgres://…/");
    }

    #[test]
    fn private_words_are_taken_out_of_messages() {
        let url = PostgresUrl::new("postgres://release_bot:s3cr3t%2Fcanary@db.internal.example:5433/cavra?user=other_user");
        let text = url.redact("FATAL: password authentication failed for user \"release_bot\" at db.internal.example (s3cr3t/canary, other_user)");
        assert_eq!(text, "FATAL: password authentication failed for user \"…\" at … (…, …)");
        let short = PostgresUrl::new("postgres://ab:cd@h/x");
        assert_eq!(short.redact("role \"ab\" does not exist; about"), "role \"…\" does not exist; about");
        let common = PostgresUrl::new("postgres://cavra:pw-canary-1234@db/cavra");
        assert_eq!(common.redact("relation cavra_schema of cavra: user \"cavra\""), "relation cavra_schema of …: user \"…\"");
    }

    #[test]
    fn sslmode_is_read_here() {
        let url = PostgresUrl::new("postgres://u:p@127.0.0.1:5432/d?sslmode=verify-full&sslrootcert=/tmp/ca%20file.pem&application_name=x");
        let parsed = url.connection().unwrap();
        assert_eq!(parsed.tls, TlsMode::VerifyFull);
        assert_eq!(parsed.root_certificates, Some(PathBuf::from("/tmp/ca file.pem")));
        assert_eq!(parsed.config.get_connect_timeout(), Some(&DEFAULT_CONNECT_TIMEOUT));
        let bad = PostgresUrl::new("postgres://u:secret-canary@h/d?sslmode=sometimes").connection().err().unwrap().to_string();
        assert!(bad.contains("sslmode must be") && !bad.contains("secret-canary"), "{bad}");
        let bad = PostgresUrl::new("postgres://u:secret-canary@h:notaport/d").connection().err().unwrap().to_string();
        assert!(bad.starts_with("cannot open the store postgres://…/d") && !bad.contains("secret-canary"), "{bad}");
    }
}
