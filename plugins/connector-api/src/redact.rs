//! Public-safe forms of URLs.
//!
//! Webhook URLs carry their credential in the path (`/services/T…/B…/secret`)
//! or the query (`?sig=…`), and may carry `user:password@`. The only parts
//! that are safe to print are the scheme and the host, so that is all that
//! [`redact_target`] keeps, and [`strip_urls`] applies the same rule to every
//! URL found inside a free-text message.

/// What a URL that cannot be parsed is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Reduces a URL to `scheme://host`, followed by `/…` when anything (port,
/// path, query, fragment) was removed. User info is always dropped. Anything
/// that does not look like `scheme://host…` becomes [`REDACTED`].
///
/// ```
/// use cavra_connector_api::redact_target;
/// assert_eq!(redact_target("https://hooks.slack.com/services/T0/B0/XYZ"), "https://hooks.slack.com/…");
/// assert_eq!(redact_target("http://user:pw@127.0.0.1:8080"), "http://127.0.0.1/…");
/// assert_eq!(redact_target("https://example.com"), "https://example.com");
/// assert_eq!(redact_target("not a url"), "[redacted]");
/// ```
pub fn redact_target(url: &str) -> String {
    let url = url.trim();
    let Some((scheme, rest)) = url.split_once("://") else {
        return REDACTED.to_owned();
    };
    if !is_scheme(scheme) {
        return REDACTED.to_owned();
    }
    let authority_end = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    // `rsplit` so that an `@` inside the password cannot leave part of it in the host.
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let (host, had_port) = split_port(host_port);
    if host.is_empty() || !is_host(host) {
        return format!("{}://{REDACTED}", scheme.to_ascii_lowercase());
    }
    let trailing = &rest[authority_end..];
    let removed_something = had_port || !(trailing.is_empty() || trailing == "/");
    let suffix = if removed_something { "/…" } else { "" };
    format!("{}://{}{suffix}", scheme.to_ascii_lowercase(), host.to_ascii_lowercase())
}

/// Replaces every `scheme://…` URL inside `text` by its [`redact_target`] form.
///
/// A URL ends at whitespace, a quote or a closing bracket. Use it on any
/// message that may quote a URL (error texts of HTTP libraries often do).
///
/// ```
/// use cavra_connector_api::strip_urls;
/// let msg = "POST https://hooks.example.com/T0/secret?sig=abc failed: 503";
/// assert_eq!(strip_urls(msg), "POST https://hooks.example.com/… failed: 503");
/// ```
pub fn strip_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        // Walk back over the scheme characters.
        let scheme_start =
            rest[..pos].char_indices().rev().take_while(|(_, c)| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')).last().map_or(pos, |(i, _)| i);
        let after = &rest[pos + 3..];
        let end = after.find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`' | ')' | ']' | '}' | ',')).unwrap_or(after.len());
        out.push_str(&rest[..scheme_start]);
        if end == 0 {
            // `http://` alone (e.g. in "must be an http:// URL"): nothing to hide.
            out.push_str(&rest[scheme_start..pos + 3]);
        } else if scheme_start == pos {
            // `://` with no scheme in front: still hide whatever follows.
            out.push_str(REDACTED);
        } else {
            out.push_str(&redact_target(&rest[scheme_start..pos + 3 + end]));
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic()) && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// Splits `host:port` / `[v6]:port`; returns the host and whether a port was present.
fn split_port(host_port: &str) -> (&str, bool) {
    if let Some(v6_end) = host_port.strip_prefix('[').and_then(|s| s.find(']')) {
        let host = &host_port[..v6_end + 2];
        return (host, host_port.len() > host.len());
    }
    match host_port.rsplit_once(':') {
        Some((host, _port)) => (host, true),
        None => (host_port, false),
    }
}

fn is_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return !inner.is_empty() && inner.chars().all(|c| c.is_ascii_hexdigit() || matches!(c, ':' | '.'));
    }
    host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_scheme_and_host_only() {
        let cases = [
            ("https://hooks.slack.com/services/T0/B0/CANARY", "https://hooks.slack.com/…"),
            ("https://HOOKS.example.com?token=CANARY", "https://hooks.example.com/…"),
            ("https://a:CANARY@example.com/", "https://example.com"),
            ("https://a:CAN@RY@example.com/x", "https://example.com/…"),
            ("http://[::1]:8080/x", "http://[::1]/…"),
            ("smtp://mail.example.com:587", "smtp://mail.example.com/…"),
            ("https://exa%2Fmple.com/x", "https://[redacted]"),
            ("hooks.slack.com/services/CANARY", "[redacted]"),
            ("", "[redacted]"),
            ("://x", "[redacted]"),
        ];
        for (input, want) in cases {
            assert_eq!(redact_target(input), want, "{input}");
        }
    }

    #[test]
    fn strips_every_url_in_text() {
        let text = "first http://u:p@h1.example/a?b=CANARY then (https://h2.example/CANARY) and ://CANARY end";
        let got = strip_urls(text);
        assert!(!got.contains("CANARY"), "{got}");
        assert_eq!(got, "first http://h1.example/… then (https://h2.example/…) and [redacted] end");
    }

    #[test]
    fn text_without_urls_is_unchanged() {
        assert_eq!(strip_urls("HTTP 503: service unavailable"), "HTTP 503: service unavailable");
        assert_eq!(strip_urls("must be an http:// or https:// URL"), "must be an http:// or https:// URL");
        assert_eq!(strip_urls("ünïcödé ✓"), "ünïcödé ✓");
    }
}
