//! Keeping secrets out of everything the host returns, records or prints.
//!
//! Two complementary tools:
//!
//! * [`redact_target`] / [`strip_urls`] (from `cavra-connector-api`) reduce
//!   URLs to `scheme://host`, whatever they contain;
//! * [`Redactor`] knows every value of the private connector configuration
//!   and replaces any occurrence of one of them (and of the path, query and
//!   user-info parts of URL values) with `[redacted]`.
//!
//! The host passes every plugin-provided string (outcome messages,
//! configuration errors, targets that are not URLs) through
//! [`Redactor::scrub`] before it reaches a [`DeliveryRecord`](crate::DeliveryRecord),
//! an error or a report.

use std::fmt;

pub use cavra_connector_api::{redact_target, strip_urls, REDACTED};

/// Whole configuration values shorter than this are not scrubbed (they
/// cannot be credentials, and scrubbing them would mangle ordinary words).
const MIN_VALUE_LEN: usize = 4;
/// Parts cut out of URL values (path segments, query values) shorter than
/// this are not scrubbed (`/hook`, `?v=1`).
const MIN_PART_LEN: usize = 6;

/// Replaces known secret values in text. Cheap to clone; `Debug` shows only
/// how many values it knows.
#[derive(Clone, Default)]
pub struct Redactor {
    /// Longest first, so that a value containing another is replaced whole.
    secrets: Vec<String>,
}

impl Redactor {
    /// A redactor that knows nothing (still strips URLs).
    pub fn new() -> Self {
        Redactor::default()
    }

    /// Adds a configuration value, and, when it is a URL, its user info,
    /// path, query, path segments and query values.
    pub fn add(&mut self, value: &str) {
        let value = value.trim();
        self.push(value, MIN_VALUE_LEN);
        if let Some((_, rest)) = value.split_once("://") {
            let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let authority = &rest[..authority_end];
            if let Some((userinfo, _)) = authority.rsplit_once('@') {
                self.push(userinfo, MIN_VALUE_LEN);
                for part in userinfo.split(':') {
                    self.push(part, MIN_VALUE_LEN);
                }
            }
            let tail = &rest[authority_end..];
            self.push(tail, MIN_PART_LEN);
            self.push(tail.trim_start_matches('/'), MIN_PART_LEN);
            let (path, query) = tail.split_once('?').unwrap_or((tail, ""));
            self.push(path, MIN_PART_LEN);
            self.push(query, MIN_PART_LEN);
            for segment in path.split('/') {
                self.push(segment, MIN_PART_LEN);
            }
            for pair in query.split(['&', '#']) {
                let value = pair.split_once('=').map_or(pair, |(_, v)| v);
                self.push(value, MIN_PART_LEN);
            }
        }
        self.secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        self.secrets.dedup();
    }

    fn push(&mut self, value: &str, min_len: usize) {
        if value.chars().count() >= min_len {
            self.secrets.push(value.to_owned());
        }
    }

    /// How many values it scrubs.
    pub fn len(&self) -> usize {
        self.secrets.len()
    }

    /// Whether it knows no value.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// `text` with every known value replaced by `[redacted]` and every URL
    /// reduced to scheme and host.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), REDACTED);
            }
        }
        strip_urls(&out)
    }

    /// A public-safe target: URLs become `scheme://host/…` (the host is kept
    /// on purpose: it says which provider, not how to post to it); anything
    /// else is scrubbed like a message.
    pub fn target(&self, target: &str) -> String {
        let target = target.trim();
        if target.contains("://") && !target.contains(char::is_whitespace) {
            redact_target(target)
        } else {
            self.scrub(target)
        }
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redactor {{ {} values }}", self.secrets.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_values_and_url_parts() {
        let mut r = Redactor::new();
        r.add("http://user:CANARY-pw@127.0.0.1:9/hook/CANARY-path?token=CANARY-query&v=1");
        r.add("CANARY-token");
        r.add("abc"); // too short to matter
        let text = "failed: /hook/CANARY-path and CANARY-query, CANARY-token, user:CANARY-pw, abc";
        let got = r.scrub(text);
        assert!(!got.contains("CANARY"), "{got}");
        assert!(got.ends_with("abc"), "{got}");
        assert!(!format!("{r:?}").contains("CANARY"));
    }

    #[test]
    fn targets_keep_the_host_only() {
        let mut r = Redactor::new();
        r.add("smtp.example.com");
        assert_eq!(r.target("https://hooks.slack.com/services/CANARY"), "https://hooks.slack.com/…");
        assert_eq!(r.target("smtp://smtp.example.com"), "smtp://smtp.example.com");
        assert_eq!(r.target("relay smtp.example.com"), "relay [redacted]");
    }
}
