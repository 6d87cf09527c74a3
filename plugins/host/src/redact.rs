//! Keeping secrets out of everything the host returns, records or prints.
//!
//! Two complementary tools:
//!
//! * [`redact_target`] / [`strip_urls`] (from `cavra-connector-api`) reduce
//!   URLs to `scheme://host`, whatever they contain;
//! * [`Redactor`] knows every value of the private connector configuration
//!   and replaces each occurrence of one of them (and of the path, query and
//!   user-info parts of URL values) that stands as a whole token with
//!   `[redacted]`; see [`Redactor`] for what counts as one.
//!
//! The host passes every plugin-provided string (outcome messages,
//! configuration errors, targets that are not URLs) through
//! [`Redactor::scrub`] before it reaches a [`DeliveryRecord`](crate::DeliveryRecord),
//! an error or a report.

use std::fmt;

pub use cavra_connector_api::{redact_target, strip_urls, REDACTED};

/// Configuration values (and user-info parts of URL values) shorter than
/// this, in characters, are not scrubbed: so short a value is no credential
/// worth the name, and scrubbing it would mangle ordinary words (`panic`,
/// `true`, `json`).
pub const MIN_SECRET_CHARS: usize = 6;
/// Parts cut out of URL values (path segments, query values) shorter than
/// this are not scrubbed (`/hook`, `?v=1`).
const MIN_PART_LEN: usize = 6;

/// Replaces known secret values in text. Cheap to clone; `Debug` shows only
/// how many values it knows.
///
/// * A value is replaced only where it stands as a **whole token**: not
///   where it is the middle, start or end of a longer word. A word is a run
///   of letters, digits and `_`; so with the value `token1` configured,
///   `token1`, `"token1"`, `x=token1` and `/token1/` are scrubbed, and
///   `token12` and `mytoken1` are left alone. A value that itself begins (or
///   ends) with punctuation, like `/hook/abc123`, is replaced wherever it
///   occurs on that side.
/// * Values shorter than [`MIN_SECRET_CHARS`] (6) characters are never
///   scrubbed (keep real secrets longer than that).
/// * URLs are reduced to scheme and host whatever they contain.
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
        self.push(value, MIN_SECRET_CHARS);
        if let Some((_, rest)) = value.split_once("://") {
            let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let authority = &rest[..authority_end];
            if let Some((userinfo, _)) = authority.rsplit_once('@') {
                self.push(userinfo, MIN_SECRET_CHARS);
                for part in userinfo.split(':') {
                    self.push(part, MIN_SECRET_CHARS);
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

    /// `text` with every known value that stands as a whole token replaced
    /// by `[redacted]`, and every URL reduced to scheme and host.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = replace_tokens(&out, secret);
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

/// Letters, digits and `_`: what a word is made of (see [`Redactor`]).
fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `text` with each occurrence of `secret` that does not cut a word in two
/// replaced by [`REDACTED`]. An occurrence cuts a word when the character
/// before it and its own first character are both word characters (or its
/// last character and the one after it are).
fn replace_tokens(text: &str, secret: &str) -> String {
    let (Some(first), Some(last)) = (secret.chars().next(), secret.chars().next_back()) else {
        return text.to_owned();
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(secret) {
        let (before, found) = rest.split_at(at);
        let after = &found[secret.len()..];
        let joins_before = is_word(first) && before.chars().next_back().is_some_and(is_word);
        let joins_after = is_word(last) && after.chars().next().is_some_and(is_word);
        out.push_str(before);
        if joins_before || joins_after {
            // Part of a longer word: keep its first character and look again
            // from the next one (an occurrence may start inside this one).
            out.push(first);
            rest = &found[first.len_utf8()..];
        } else {
            out.push_str(REDACTED);
            rest = after;
        }
    }
    out.push_str(rest);
    out
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
    fn finding_14_values_are_scrubbed_only_as_whole_tokens() {
        let mut r = Redactor::new();
        r.add("panick"); // long enough, but only ever part of a longer word below
        r.add("panic"); // shorter than the minimum: never scrubbed
        r.add("token1");
        r.add("/hook/abc123");
        assert_eq!(r.scrub("connector panicked"), "connector panicked");
        assert_eq!(r.scrub("panic: connector panicked"), "panic: connector panicked");
        assert_eq!(r.scrub("token1 \"token1\" x=token1 /token1/ (token1)"), "[redacted] \"[redacted]\" x=[redacted] /[redacted]/ ([redacted])");
        assert_eq!(r.scrub("token12 mytoken1 my_token1"), "token12 mytoken1 my_token1");
        assert_eq!(r.scrub("at x/hook/abc123, done"), "at x[redacted], done");
        assert_eq!(r.scrub("at /hook/abc1234"), "at /hook/abc1234");
        // An occurrence inside a rejected one is still found.
        let mut overlapping = Redactor::new();
        overlapping.add("ab-ab-ab");
        assert_eq!(overlapping.scrub("xab-ab-ab-ab"), "xab-[redacted]");
        // Not ASCII: letters of any script make words.
        let mut unicode = Redactor::new();
        unicode.add("sécret");
        assert_eq!(unicode.scrub("sécret, présécret, sécrets"), "[redacted], présécret, sécrets");
    }

    #[test]
    fn finding_14_short_values_are_never_scrubbed() {
        let mut r = Redactor::new();
        for value in ["panic", "true", "json", "abcde"] {
            r.add(value);
        }
        assert!(r.is_empty(), "{r:?}");
        r.add("abcdef");
        assert_eq!(r.scrub("abcde abcdef"), "abcde [redacted]");
        assert_eq!(MIN_SECRET_CHARS, 6);
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
