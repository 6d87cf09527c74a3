//! Public-safety detectors (README, "Public-safe by construction"): does a string from a public policy or
//! evidence document contain a URL, a hostname, an IP address, an e-mail
//! address or a credential, and is a JSON key named like a secret?
//!
//! Each `looks_like_*` function scans the whole text and is true when any part
//! of it matches, so `"see https://example.com"` is a URL. The scanners are
//! small hand-written loops over bytes: every marker is ASCII, and any other
//! byte (including UTF-8 continuation bytes) only separates words.
//!
//! They are deliberately conservative where a public document has a
//! legitimate look-alike:
//!
//! * evidence references with a custom scheme (`go-parity://ci/shadow-parity-pass`)
//!   are not URLs: only network schemes (`http`, `https`, `ftp`, `ws`, `wss`,
//!   `file`, `ssh`, database and queue schemes, ...) count. A custom-scheme
//!   reference whose authority is a real host (`go-parity://ci.example.com/1`)
//!   is still caught by [`looks_like_hostname`];
//! * file names (`runbook.md`, `plan.json`), version numbers (`1.2.3`) and
//!   schema strings (`cavra.go-backend-rollback-plan.v1`) are not hostnames;
//! * times (`18:00`, `2026-05-21T18:00:00Z`) are not IPv6 addresses;
//! * package pins (`lodash@4.17.21`) and image names (`logo@2x.png`) are not
//!   e-mail addresses;
//! * identifiers, however long, and hexadecimal digests (commit ids) are not
//!   random-looking secrets: that takes mixed case, digits and no words.
//!
//! They know nothing of the engine: the builtin registry (`builtins/mod.rs`)
//! makes each one a `looks_like_*` builtin of the language.

/// Schemes that address a network (or the file system): `scheme://...` with
/// one of these, case-insensitive, is a URL. `git+ssh` counts by its parts.
const NETWORK_SCHEMES: &[&str] = &[
    "http",
    "https",
    "ftp",
    "ftps",
    "sftp",
    "ws",
    "wss",
    "file",
    "ssh",
    "git",
    "svn",
    "telnet",
    "smtp",
    "smtps",
    "imap",
    "imaps",
    "pop3",
    "pop3s",
    "ldap",
    "ldaps",
    "redis",
    "rediss",
    "postgres",
    "postgresql",
    "mysql",
    "mariadb",
    "mongodb",
    "srv",
    "amqp",
    "amqps",
    "mqtt",
    "mqtts",
    "nats",
    "kafka",
    "s3",
    "gs",
    "tcp",
    "udp",
    "tls",
    "rtsp",
    "rtmp",
    "irc",
    "ircs",
    "sip",
    "nfs",
    "smb",
    "cifs",
    "dav",
    "webdav",
    "grpc",
    "grpcs",
    "unix",
    "docker",
    "oci",
];

/// Top-level domains of three or more letters that are taken as a hostname's
/// end. Two-letter (country-code) domains are all taken, except those in
/// [`FILE_EXTENSIONS`]. Dictionary words that often follow a dot in field
/// paths (`owner.team`, `user.name`, `config.example`) are left out on purpose.
const KNOWN_TLDS: &[&str] = &[
    "com",
    "net",
    "org",
    "edu",
    "gov",
    "mil",
    "info",
    "biz",
    "mobi",
    "asia",
    "app",
    "dev",
    "cloud",
    "xyz",
    "arpa",
    "local",
    "localdomain",
    "localhost",
    "internal",
    "intranet",
    "corp",
    "lan",
    "svc",
    "consul",
    "onion",
];

/// Endings of file names. A dotted word ending in one of these is a file name,
/// not a hostname or the domain of an e-mail address, even where the ending is
/// also a country-code domain (`.md` is Moldova, `.rs` Serbia, `.sh` St Helena).
const FILE_EXTENSIONS: &[&str] = &[
    "md", "rs", "py", "sh", "go", "pl", "rb", "cs", "js", "ts", "db", "gz", "xz", "bz", "so", "in", "ps", "mk", "cc", "ml", "am", "la", "hs", "el", "vb", "fs",
    "rc", "sc", "ex", "kt", "mm", "hh", "tf", "po", "mo", "sv", "nu", "txt", "json", "yaml", "yml", "toml", "xml", "html", "htm", "csv", "tsv", "log", "lock",
    "conf", "cfg", "ini", "env", "pdf", "png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "tar", "tgz", "zip", "bz2", "whl", "jar", "exe", "dll", "bin",
    "wasm", "proto", "sql", "java", "cpp", "hpp", "swift", "php", "cavra", "pest", "lua", "css", "scss", "tsx", "jsx", "ipynb",
];

/// JSON keys whose value is a secret, after normalisation (lower case, words
/// joined by `_`): the key is one of these or ends with `_` and one of these.
const SECRET_KEYS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "secret_key",
    "token",
    "api_key",
    "apikey",
    "access_key",
    "private_key",
    "signing_key",
    "encryption_key",
    "master_key",
    "client_secret",
    "webhook_url",
    "authorization",
    "credential",
    "credentials",
];

/// `scheme://` with a network scheme, or a word starting with `www.`.
pub fn looks_like_url(text: &str) -> bool {
    let b = text.as_bytes();
    let mut from = 0;
    while let Some(at) = find(b, from, b"://") {
        from = at + 3;
        let mut start = at;
        while start > 0 && (b[start - 1].is_ascii_alphanumeric() || matches!(b[start - 1], b'+' | b'.' | b'-')) {
            start -= 1;
        }
        let scheme = &b[start..at];
        let network = scheme.split(|&c| c == b'+').any(|part| NETWORK_SCHEMES.iter().any(|s| part.eq_ignore_ascii_case(s.as_bytes())));
        let has_rest = b.get(at + 3).is_some_and(|c| !c.is_ascii_whitespace());
        if network && has_rest {
            return true;
        }
    }
    (0..b.len())
        .any(|i| (i == 0 || !is_host_char(b[i - 1])) && b.len() > i + 4 && b[i..i + 4].eq_ignore_ascii_case(b"www.") && b[i + 4].is_ascii_alphanumeric())
}

/// A dotted name that ends in a known or country-code top-level domain
/// (`example.com`, `hooks.slack.com`, `foo.internal`, `a.b.c.io`), or the word
/// `localhost`. Not version numbers (`1.2.3`), file names (`runbook.md`,
/// `docs/plan.json`) or schema strings (`cavra.go-backend-rollback-plan.v1`).
pub fn looks_like_hostname(text: &str) -> bool {
    let b = text.as_bytes();
    runs(b, is_host_char).any(|word| {
        let word = trim(word, b".-");
        word.eq_ignore_ascii_case(b"localhost") || is_hostname(word)
    })
}

/// An IPv4 dotted quad (`10.0.0.1`, also with a port or prefix length) or an
/// IPv6 address (`2001:db8::1`, `::1`, `::ffff:192.0.2.1`). Not times
/// (`18:00`, `18:00:00`), MAC addresses or four-part words glued to letters
/// (`v1.2.3.4`); a bare four-part version number is an IPv4 address.
pub fn looks_like_ip(text: &str) -> bool {
    let b = text.as_bytes();
    let mut from = 0;
    while from < b.len() {
        let Some((start, end)) = next_run(b, from, |c| c.is_ascii_hexdigit() || c == b':' || c == b'.') else { break };
        from = end;
        let run = &b[start..end];
        let before = if start > 0 { b[start - 1] } else { b' ' };
        // IPv4: the digits-and-dots parts of the run, each bounded by non-word bytes.
        for (s, e) in run_spans(run, |c| c.is_ascii_digit() || c == b'.') {
            let mut e = e;
            while e > s && run[e - 1] == b'.' {
                e -= 1;
            }
            let left = if s == 0 { before } else { run[s - 1] };
            let right = if e == run.len() { b.get(end).copied().unwrap_or(b' ') } else { run[e] };
            if !is_word_char(left) && !is_word_char(right) && is_ipv4(&run[s..e]) {
                return true;
            }
        }
        // IPv6: the whole run, bounded by non-word bytes.
        let mut run = run;
        while run.len() > 1 && run[run.len() - 1] == b'.' {
            run = &run[..run.len() - 1];
        }
        if run.len() > 2 && run[run.len() - 1] == b':' && run[run.len() - 2] != b':' {
            run = &run[..run.len() - 1];
        }
        let after = b.get(end).copied().unwrap_or(b' ');
        if !is_word_char(before) && !is_word_char(after) && is_ipv6(run) {
            return true;
        }
    }
    false
}

/// `local@domain.tld`: a non-empty local part, then a domain of at least two
/// labels whose last label is alphabetic and not a file extension.
pub fn looks_like_email(text: &str) -> bool {
    let b = text.as_bytes();
    b.iter().enumerate().filter(|(_, &c)| c == b'@').any(|(at, _)| {
        let local_ok = at > 0 && is_local_char(b[at - 1]);
        let mut end = at + 1;
        while end < b.len() && is_host_char(b[end]) {
            end += 1;
        }
        let domain = trim(&b[at + 1..end], b".-");
        local_ok && {
            let labels: Vec<&[u8]> = domain.split(|&c| c == b'.').collect();
            labels.len() >= 2
                && labels.iter().all(|l| is_label(l))
                && labels.last().is_some_and(|tld| tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic) && !is_file_extension(tld))
        }
    })
}

/// A known token prefix with a token-like body (Slack `xoxb-`/`xoxp-`/`xoxa-`/
/// `xapp-`, GitHub `ghp_`/`gho_`/`github_pat_`, GitLab `glpat-`, OpenAI `sk-`,
/// Stripe `sk_live_`/`sk_test_`/`whsec_`, AWS `AKIA`/`ASIA` + 16, Google
/// `AIza`, npm `npm_`), a PEM block (`-----BEGIN`), a JWT (`eyJ...`, three
/// dot-separated base64url parts), `Bearer TOKEN`, or a long random-looking
/// string: 32 or more characters of `[A-Za-z0-9+/=_-]` with upper case, lower
/// case and digits mixed rather than forming words.
pub fn looks_like_secret(text: &str) -> bool {
    let b = text.as_bytes();
    if find(b, 0, b"-----BEGIN").is_some() {
        return true;
    }
    (0..b.len()).any(|i| (i == 0 || !b[i - 1].is_ascii_alphanumeric()) && token_at(&b[i..]))
        || runs(b, |c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=' | b'_' | b'-')).any(is_random)
}

/// A JSON key named like a secret: `password`, `passwd`, `secret`, `token`,
/// `api_key`, `apikey`, `access_key`, `private_key`, `client_secret`,
/// `webhook_url`, `authorization`, ..., in any case and spelling (`apiKey`,
/// `API-KEY`, `x-api-key`), alone or as the last words (`slack_token`,
/// `db_password`). Not keys that merely mention one (`token_env`,
/// `max_tokens`, `secret_name`).
pub fn looks_like_secret_key(key: &str) -> bool {
    let mut norm = String::with_capacity(key.len() + 4);
    let mut prev: Option<char> = None;
    for c in key.chars() {
        if c.is_ascii_uppercase() && prev.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit()) {
            norm.push('_');
        }
        norm.push(if matches!(c, '-' | ' ' | '.') { '_' } else { c.to_ascii_lowercase() });
        prev = Some(c);
    }
    let norm = norm.trim_matches('_');
    SECRET_KEYS.iter().any(|name| norm == *name || (norm.ends_with(name) && norm[..norm.len() - name.len()].ends_with('_')))
}

// ---------------------------------------------------------------------------
// Scanning helpers.

fn is_host_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'.' || c == b'-'
}

fn is_word_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn is_local_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    if from > hay.len() {
        return None;
    }
    hay[from..].windows(needle.len()).position(|w| w == needle).map(|p| p + from)
}

fn trim<'a>(mut s: &'a [u8], chars: &[u8]) -> &'a [u8] {
    while let [first, rest @ ..] = s {
        if !chars.contains(first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !chars.contains(last) {
            break;
        }
        s = rest;
    }
    s
}

/// The next maximal run of bytes satisfying `member`, at or after `from`.
fn next_run(b: &[u8], from: usize, member: impl Fn(u8) -> bool) -> Option<(usize, usize)> {
    let start = (from..b.len()).find(|&i| member(b[i]))?;
    let end = (start..b.len()).find(|&i| !member(b[i])).unwrap_or(b.len());
    Some((start, end))
}

fn run_spans(b: &[u8], member: impl Fn(u8) -> bool + Copy) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some((s, e)) = next_run(b, from, member) {
        out.push((s, e));
        from = e;
    }
    out
}

fn runs(b: &[u8], member: impl Fn(u8) -> bool + Copy) -> impl Iterator<Item = &[u8]> {
    run_spans(b, member).into_iter().map(move |(s, e)| &b[s..e])
}

fn eq_any(s: &[u8], list: &[&str]) -> bool {
    list.iter().any(|x| s.eq_ignore_ascii_case(x.as_bytes()))
}

fn is_file_extension(s: &[u8]) -> bool {
    eq_any(s, FILE_EXTENSIONS)
}

// ---------------------------------------------------------------------------
// Hostnames and addresses.

/// A DNS label: 1 to 63 letters, digits and inner hyphens.
fn is_label(l: &[u8]) -> bool {
    (1..=63).contains(&l.len()) && l.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-') && l[0] != b'-' && l[l.len() - 1] != b'-'
}

fn is_tld(l: &[u8]) -> bool {
    if l.len() > 4 && l[..4].eq_ignore_ascii_case(b"xn--") {
        return true;
    }
    l.iter().all(u8::is_ascii_alphabetic) && !is_file_extension(l) && (l.len() == 2 || eq_any(l, KNOWN_TLDS))
}

/// A word of at least two labels ending in a top-level domain. Labels after
/// an invalid one (`a..example.com`) still count on their own.
fn is_hostname(word: &[u8]) -> bool {
    let labels: Vec<&[u8]> = word.split(|&c| c == b'.').collect();
    let valid_suffix = labels.iter().rev().take_while(|l| is_label(l)).count();
    (valid_suffix >= 2 && is_tld(labels[labels.len() - 1])) || is_private_name(&labels)
}

/// Labels that name a private network, whatever the top-level label says
/// (`db01.internal.corp.example`, `api.svc.cluster.lab`).
const PRIVATE_LABELS: &[&[u8]] = &[b"internal", b"intranet", b"corp", b"local", b"localdomain", b"lan", b"home", b"svc", b"cluster", b"consul"];

/// A dotted name of at least three valid labels, one of which (not the
/// last) names a private network, and whose last label is no file extension.
fn is_private_name(labels: &[&[u8]]) -> bool {
    let Some((last, rest)) = labels.split_last() else { return false };
    labels.len() >= 3
        && labels.iter().all(|l| is_label(l))
        && !FILE_EXTENSIONS.iter().any(|e| last.eq_ignore_ascii_case(e.as_bytes()))
        && rest.iter().any(|l| PRIVATE_LABELS.iter().any(|p| l.eq_ignore_ascii_case(p)))
}

fn is_ipv4(s: &[u8]) -> bool {
    let parts: Vec<&[u8]> = s.split(|&c| c == b'.').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| (1..=3).contains(&p.len()) && p.iter().all(u8::is_ascii_digit) && p.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0')) <= 255)
}

fn is_ipv6(s: &[u8]) -> bool {
    if !s.contains(&b':') || !s.iter().any(u8::is_ascii_hexdigit) {
        return false;
    }
    let (head, tail, compressed) = match find(s, 0, b"::") {
        Some(p) => (&s[..p], &s[p + 2..], true),
        None => (s, &s[s.len()..], false),
    };
    if compressed && find(tail, 0, b"::").is_some() {
        return false;
    }
    let groups: Vec<&[u8]> = [head, tail].iter().filter(|p| !p.is_empty()).flat_map(|p| p.split(|&c| c == b':')).collect();
    let mut count = 0;
    for (i, g) in groups.iter().enumerate() {
        if g.contains(&b'.') {
            // An embedded IPv4 address is the last group and counts as two.
            if i + 1 != groups.len() || !is_ipv4(g) {
                return false;
            }
            count += 2;
        } else if (1..=4).contains(&g.len()) && g.iter().all(u8::is_ascii_hexdigit) {
            count += 1;
        } else {
            return false;
        }
    }
    if compressed {
        count <= 7
    } else {
        count == 8
    }
}

// ---------------------------------------------------------------------------
// Credentials.

/// Does a known credential start here? `b` starts at a word boundary.
fn token_at(b: &[u8]) -> bool {
    let body = |prefix: &[u8], member: fn(u8) -> bool| -> usize { b[prefix.len()..].iter().take_while(|&&c| member(c)).count() };
    let alnum: fn(u8) -> bool = |c| c.is_ascii_alphanumeric();
    let alnum_dash: fn(u8) -> bool = |c| c.is_ascii_alphanumeric() || c == b'-';
    let word: fn(u8) -> bool = |c| c.is_ascii_alphanumeric() || c == b'_';
    let word_dash: fn(u8) -> bool = |c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-';
    let starts = |p: &[u8]| b.starts_with(p);

    // Slack: xoxb-, xoxp-, xoxa-, xoxr-, xoxs-, xoxe-, and app tokens xapp-.
    if b.len() > 5 && b.starts_with(b"xox") && matches!(b[3], b'a' | b'b' | b'p' | b'r' | b's' | b'e') && b[4] == b'-' {
        return body(b"xoxb-", alnum_dash) >= 10;
    }
    if starts(b"xapp-") {
        return body(b"xapp-", alnum_dash) >= 10;
    }
    // GitHub.
    for p in [&b"ghp_"[..], b"gho_", b"ghu_", b"ghs_", b"ghr_"] {
        if starts(p) {
            return body(p, alnum) >= 16;
        }
    }
    if starts(b"github_pat_") {
        return body(b"github_pat_", word) >= 16;
    }
    if starts(b"glpat-") {
        return body(b"glpat-", word_dash) >= 16;
    }
    // Stripe.
    for p in [&b"sk_live_"[..], b"sk_test_", b"rk_live_", b"rk_test_"] {
        if starts(p) {
            return body(p, alnum) >= 8;
        }
    }
    if starts(b"whsec_") {
        return body(b"whsec_", alnum) >= 16;
    }
    // OpenAI and Anthropic style `sk-...`: long, with a digit, so that words
    // such as `sk-learn` are not taken.
    if starts(b"sk-") {
        let n = body(b"sk-", word_dash);
        return n >= 20 && b[3..3 + n].iter().any(u8::is_ascii_digit);
    }
    // AWS access key ids: exactly 16 upper-case letters or digits.
    if starts(b"AKIA") || starts(b"ASIA") {
        let n = body(b"AKIA", |c| c.is_ascii_uppercase() || c.is_ascii_digit());
        return n == 16 && !b.get(20).is_some_and(|c| c.is_ascii_alphanumeric());
    }
    if starts(b"AIza") {
        return body(b"AIza", word_dash) >= 35;
    }
    if starts(b"npm_") {
        return body(b"npm_", alnum) >= 36;
    }
    // JWT: header.payload.signature, base64url; the header is JSON, so `eyJ`.
    if starts(b"eyJ") {
        let header = body(b"", word_dash);
        let rest = &b[header..];
        if header >= 10 && rest.first() == Some(&b'.') {
            let payload = rest[1..].iter().take_while(|&&c| word_dash(c)).count();
            return payload >= 2 && rest.get(1 + payload) == Some(&b'.');
        }
        return false;
    }
    // `Bearer TOKEN`, with a token that has a digit (not `Bearer authentication`).
    if b.len() > 7 && b[..6].eq_ignore_ascii_case(b"bearer") && b[6] == b' ' {
        let rest = trim(&b[6..], b" ");
        let n = rest.iter().take_while(|&&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'~' | b'+' | b'/' | b'=' | b'-')).count();
        return n >= 8 && rest[..n].iter().any(u8::is_ascii_digit);
    }
    false
}

/// A long random-looking run: at least 32 characters, upper case, lower case
/// and digits, at least 12 different characters, and mostly not words (less
/// than half of it in runs of four or more letters of the same case, which is
/// how identifiers such as `GoBackendRollbackDrill2026Schedule` look).
fn is_random(run: &[u8]) -> bool {
    if run.len() < 32 || !run.iter().any(u8::is_ascii_uppercase) || !run.iter().any(u8::is_ascii_lowercase) || !run.iter().any(u8::is_ascii_digit) {
        return false;
    }
    let mut seen = [false; 256];
    run.iter().for_each(|&c| seen[c as usize] = true);
    if seen.iter().filter(|&&s| s).count() < 12 {
        return false;
    }
    let class = |c: u8| {
        if c.is_ascii_lowercase() {
            1
        } else if c.is_ascii_uppercase() {
            2
        } else {
            0
        }
    };
    let mut wordy = 0;
    let mut i = 0;
    while i < run.len() {
        let k = class(run[i]);
        let j = (i..run.len()).find(|&j| class(run[j]) != k).unwrap_or(run.len());
        if k != 0 && j - i >= 4 {
            wordy += j - i;
        }
        i = j;
    }
    wordy * 2 < run.len()
}

#[cfg(test)]
mod tests {

    #[test]
    fn finding_16_private_network_names_are_host_names_whatever_their_top_level_label() {
        for host in ["db01.internal.corp.example", "api.svc.cluster.lab", "build.lan.home", "vault.service.consul.example"] {
            assert!(looks_like_hostname(host), "{host}");
            assert!(looks_like_hostname(&format!("reach {host} on port 8200")), "{host} in a sentence");
        }
        for not_host in ["drill.local.md", "runbook.internal.yaml", "release-governance", "v1.2.3", "docs/go-backend-rollback-drill-scheduling.md"] {
            assert!(!looks_like_hostname(not_host), "{not_host}");
        }
    }
    use super::*;

    /// Every string value of `examples/*.json`, and other public-safe text.
    const PUBLIC_SAFE: &[&str] = &[
        "cavra.go-backend-promotion-evidence.v1",
        "pass",
        "ready",
        "apr_go_backend_promotion",
        "go-parity://ci/shadow-parity-pass",
        "cavra.go-backend-rollback-drill-schedule.v1",
        "go_backend_python_fallback_monthly",
        "production-pilot",
        "active",
        "2026-05-30T15:40:00Z",
        "release-governance",
        "platform-operations",
        "slack",
        "teams",
        "docs/go-backend-rollback-drill-scheduling.md",
        "cavra.go-backend-rollback-drill-history.v1",
        "drill_go_backend_python_fallback",
        "2026-05-21T15:40:00Z",
        "release-agent",
        "promoted",
        "disabled",
        "docs/go-backend-rollback-drill-history.md",
        "go-rollback-drill://ci/python-fallback-restored",
        "go-production-readiness://ci/post-drill-ready",
        "cavra.go-backend-rollback-plan.v1",
        "apr_go_backend_rollback",
        "python-fallback-available",
        "promoted-mode-disable-tested",
        "rollback-approval-recorded",
        "operator-runbook-linked",
        "evidence-capture-enabled",
        "Set CAVRA_GO_BACKEND_MODE=disabled.",
        "Restart the API, CI runner, or workstation process.",
        "go-rollback-readiness://ci/ready",
        "cavra.go-backend-rollback-rehearsal.v1",
        "docs/go-backend-rollback-rehearsal.md",
        "go-rollback-rehearsal://ci/fallback-restored",
        "go-production-readiness://ci/after-rehearsal",
        "platform-lead",
        "production-change-freeze",
        "2026-05-21T18:00:00Z",
        "2026-05-21T20:00:00Z",
        "production change freeze",
        "2026-05-22T00:00:00Z",
        "2026-05-22T08:00:00Z",
        "regional holiday",
        // Other look-alikes.
        "",
        "runbook.md",
        "plan.json",
        "rules/routing.test.toml",
        "1.2.3",
        "v1.2.3.4",
        "go1.22.3",
        "ci://run/1",
        "18:00",
        "the freeze runs 18:00-20:00 UTC",
        "2026-05-21T18:00:00.250+02:00",
        "lodash@4.17.21",
        "logo@2x.png",
        "@release-governance",
        "e.g. the owner",
        "i.e. not now",
        "$.maintenance_windows[0].reason",
        "owner.team and user.name",
        "Bearer tokens are never stored",
        "sk-learn",
        "task-runner-production-change-freeze-window",
        "GoBackendRollbackDrillSchedule2026Monthly",
        "docs/GoBackendRollback2026/RunbookHistory.md",
        "3f2a9c1e4b7d8f0a6c5e2b1d9f8a7c6e5d4b3a21",
        "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "use Builtin::ALL",
        "xoxb-",
    ];

    #[test]
    fn public_safe_text_is_not_flagged() {
        for s in PUBLIC_SAFE {
            assert!(!looks_like_url(s), "url: {s}");
            assert!(!looks_like_hostname(s), "hostname: {s}");
            assert!(!looks_like_ip(s), "ip: {s}");
            assert!(!looks_like_email(s), "email: {s}");
            assert!(!looks_like_secret(s), "secret: {s}");
        }
    }

    #[test]
    fn urls() {
        for s in [
            "https://hooks.slack.com/services/T000/B000/XXXX",
            "http://localhost:8080/",
            "see HTTPS://Example.com for details",
            "ftp://files.internal/drop",
            "ws://10.0.0.1:9000",
            "wss://events",
            "file:///etc/cavra/config.json",
            "git+ssh://git@github.com/org/repo",
            "jdbc:postgresql://db:5432/cavra",
            "s3://bucket/key",
            "www.example.com",
            "(www.example.org/path)",
        ] {
            assert!(looks_like_url(s), "{s}");
        }
        for s in [
            "go-parity://ci/shadow-parity-pass",
            "go-rollback-drill://ci/python-fallback-restored",
            "ci://run/1",
            "xhttps://x",
            "webhooks start with https://",
            "awww.example",
            "www.",
        ] {
            assert!(!looks_like_url(s), "{s}");
        }
    }

    #[test]
    fn hostnames() {
        for s in [
            "example.com",
            "hooks.slack.com",
            "foo.internal",
            "a.b.c.io",
            "localhost",
            "LOCALHOST:8080",
            "page ops via pager.example.org.",
            "api.svc.cluster.local",
            "db-1.prod.corp",
            "go-parity://ci.example.com/run/1",
            "xn--bcher-kva.com",
            "xn--bcher-kva.xn--p1ai",
            "mirror.example.de",
            "a..example.com",
        ] {
            assert!(looks_like_hostname(s), "{s}");
        }
        for s in [
            "1.2.3",
            "10.0.0.1",
            "docs/go-backend-rollback-drill-history.md",
            "runbook.md",
            "plan.json",
            "main.rs",
            "cavra.go-backend-rollback-plan.v1",
            "go-rollback-drill://ci/python-fallback-restored",
            "localhost-only",
            "e.g",
            "owner.team",
            "config.example",
            "example.",
            ".com",
        ] {
            assert!(!looks_like_hostname(s), "{s}");
        }
    }

    #[test]
    fn ip_addresses() {
        for s in [
            "10.0.0.1",
            "192.168.1.254:8080",
            "10.0.0.0/8",
            "reach it at 172.16.0.3.",
            "::1",
            "[::1]:8080",
            "2001:db8::8a2e:370:7334",
            "2001:0db8:0000:0000:0000:8a2e:0370:7334",
            "fe80::1%eth0",
            "::ffff:192.0.2.1",
            "1:2:3:4:5:6:7:8",
            "1.2.3.4",
        ] {
            assert!(looks_like_ip(s), "{s}");
        }
        for s in [
            "18:00",
            "18:00:00",
            "2026-05-21T18:00:00Z",
            "256.1.1.1",
            "1.2.3",
            "1.2.3.4.5",
            "v1.2.3.4",
            "00:1a:2b:3c:4d:5e",
            "1:2:3:4:5:6:7:8:9",
            "1::2::3",
            "::",
            "std::fs",
            "abcde::1",
            ":8080",
        ] {
            assert!(!looks_like_ip(s), "{s}");
        }
    }

    #[test]
    fn email_addresses() {
        for s in ["ops@example.com", "release.governance+alerts@corp.example.io", "mail <oncall@team.internal>", "git@github.com:org/repo", "a@b.cd"] {
            assert!(looks_like_email(s), "{s}");
        }
        for s in ["@release-governance", "ops@", "ops@localhost", "lodash@4.17.21", "logo@2x.png", "user@host", "a@b.c", "@example.com"] {
            assert!(!looks_like_email(s), "{s}");
        }
    }

    #[test]
    fn secrets() {
        for s in [
            "xoxb-123456789012-abcdefghijklmnop",
            "token: xoxp-1234567890-0987654321",
            "xoxa-2-abcdefghij",
            "xapp-1-A0123456789-abcdef",
            "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
            "gho_16CharsTokenABCD",
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
            "glpat-abcdefghij0123456789",
            "sk-proj-abc123def456ghi789jkl",
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            "whsec_abcdefghijklmnop1234",
            "AKIAIOSFODNN7EXAMPLE",
            "id=ASIAY34FZKBOKMUTVV7A;",
            "AIzaSyA-abcdefghijklmnopqrstuvwxyz01234",
            "npm_abcdefghijklmnopqrstuvwxyz0123456789",
            "-----BEGIN OPENSSH PRIVATE KEY-----",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.",
            "Authorization: Bearer 0a1b2c3d4e5f",
            "bearer abc.def.123",
            "q7Vx2LmN9pRtY4wZ8sKd3FhJ6gBc1XaE0uIo5TyR",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY2",
        ] {
            assert!(looks_like_secret(s), "{s}");
        }
        for s in [
            "xoxb-short",
            "ghp_short",
            "sk-learn-is-a-library-name-too",
            "AKIA_IS_A_PREFIX",
            "AKIAIOSFODNN7EXAMPLE2",
            "eyJust.a.word",
            "Bearer authentication",
            "Bearer {token}",
            "-----END-----",
            "a3f2a9c1e4b7d8f0a6c5e2b1d9f8a7c6e5d4b3a21f",
            "ALL_CAPS_CONSTANT_NAME_WITH_DIGITS_2026",
            "Short1Random2",
        ] {
            assert!(!looks_like_secret(s), "{s}");
        }
    }

    #[test]
    fn secret_keys() {
        for k in [
            "password",
            "PASSWORD",
            "db_password",
            "passwd",
            "secret",
            "client_secret",
            "clientSecret",
            "token",
            "slack_token",
            "slackToken",
            "access_token",
            "api_key",
            "apiKey",
            "API-KEY",
            "x-api-key",
            "apikey",
            "access_key",
            "private_key",
            "webhook_url",
            "webhookUrl",
            "Authorization",
            "credentials",
        ] {
            assert!(looks_like_secret_key(k), "{k}");
        }
        for k in [
            "",
            "token_env",
            "url_env",
            "max_tokens",
            "secret_name",
            "tokenizer",
            "slacktoken",
            "webhook",
            "approval_id",
            "evidence_refs",
            "runbook_ref",
            "schema_version",
            "escalation_owner",
            "acknowledgement_minutes",
            "owner_routes",
            "primary_key",
        ] {
            assert!(!looks_like_secret_key(k), "{k}");
        }
    }

    #[test]
    fn non_ascii_text_is_scanned_safely() {
        for s in ["Überprüfung läuft – 18:00", "ключ", "🙂@🙂.com", "ex\u{e4}mple.com", "日本.jp"] {
            looks_like_url(s);
            looks_like_hostname(s);
            looks_like_ip(s);
            looks_like_email(s);
            looks_like_secret(s);
            looks_like_secret_key(s);
        }
        assert!(looks_like_hostname("ex\u{e4}mple.com"), "the ASCII part of a mixed word still counts");
    }
}
