//! Bearer-token access control for the API. `CAVRA_API_TOKENS` names a file
//! of token *hashes*, one per line: `sha256:<64 hex digits> <role> <identity>`
//! (`#` starts a comment). Roles: `reader` (reads) and `operator` (reads and
//! changes). A presented token is hashed and compared with every entry in
//! constant time; tokens are never stored, logged or echoed.

use super::http::ApiError;
use hyper::StatusCode;
use sha2::{Digest, Sha256};
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Role {
    Reader,
    Operator,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Operator => "operator",
        }
    }
}

/// Who made a request, from their token.
#[derive(Clone, Debug)]
pub(crate) struct Identity {
    pub name: String,
    pub role: Role,
}

struct Entry {
    hash: [u8; 32],
    identity: Identity,
}

pub(crate) struct Tokens {
    entries: Vec<Entry>,
}

impl Tokens {
    /// Reads a token file; errors name the file and line, never a hash.
    pub(crate) fn load(path: &Path) -> Result<Tokens, String> {
        let shown = path.display();
        let text = std::fs::read_to_string(path).map_err(|e| format!("CAVRA_API_TOKENS: {shown}: cannot read: {e}"))?;
        let mut entries = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let at = |what: &str| format!("CAVRA_API_TOKENS: {shown}:{}: {what}", n + 1);
            let mut parts = line.split_whitespace();
            let (Some(hash), Some(role), Some(name), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
                return Err(at("expected `sha256:<64 hex digits> <reader|operator> <identity>`"));
            };
            let hash = hash.strip_prefix("sha256:").and_then(parse_hex).ok_or_else(|| at("the hash must be `sha256:` and 64 hex digits"))?;
            let role = match role {
                "reader" => Role::Reader,
                "operator" => Role::Operator,
                other => return Err(at(&format!("unknown role {other:?}; expected reader or operator"))),
            };
            if !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                return Err(at("the identity may hold letters, digits, `-`, `_` and `.` only"));
            }
            entries.push(Entry { hash, identity: Identity { name: name.to_string(), role } });
        }
        if entries.is_empty() {
            return Err(format!("CAVRA_API_TOKENS: {shown}: no tokens; an empty file would lock every client out"));
        }
        Ok(Tokens { entries })
    }

    /// The identity of the request's `Authorization: Bearer` token, which must hold `needed`.
    pub(crate) fn check(&self, header: Option<&hyper::header::HeaderValue>, needed: Role) -> Result<Identity, ApiError> {
        let unauthorized = |code, message: &str| ApiError::new(StatusCode::UNAUTHORIZED, code, message);
        let Some(header) = header else {
            return Err(unauthorized("missing_token", "this server needs a bearer token: send Authorization: Bearer <token>"));
        };
        let token = header.to_str().ok().and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer "))).map(str::trim);
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Err(unauthorized("missing_token", "the Authorization header must be `Bearer <token>`"));
        };
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Every entry is compared, whatever matched, so timing says nothing about which.
        let mut found: Option<&Identity> = None;
        for entry in &self.entries {
            if constant_time_eq(&entry.hash, &presented) {
                found = Some(&entry.identity);
            }
        }
        let identity = found.ok_or_else(|| unauthorized("invalid_token", "the bearer token is not valid"))?;
        if identity.role < needed {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("this needs an {} token; {} holds a {} token", needed.name(), identity.name, identity.role.name()),
            ));
        }
        Ok(identity.clone())
    }
}

fn parse_hex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // black_box keeps the optimiser from turning the fold into an early exit.
    std::hint::black_box(diff) == 0
}

/// The line to put in a token file for `token` (`cavra api --hash-token`).
pub fn token_line(token: &str, role: &str, identity: &str) -> String {
    let hash: String = Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hash} {role} {identity}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn tokens() -> Tokens {
        let dir = std::env::temp_dir().join(format!("cavra-tokens-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join("tokens");
        let text = format!("# comment\n{}\n{}\n", token_line("read-me", "reader", "dashboard"), token_line("op-me", "operator", "release-lead"));
        std::fs::write(&file, text).expect("write the token file");
        Tokens::load(&file).expect("a valid token file")
    }

    #[test]
    fn roles_are_enforced() {
        let t = tokens();
        let bearer = |s: &str| HeaderValue::from_str(&format!("Bearer {s}")).expect("header");
        assert_eq!(t.check(Some(&bearer("read-me")), Role::Reader).map(|i| i.name).ok().as_deref(), Some("dashboard"));
        assert_eq!(t.check(Some(&bearer("read-me")), Role::Operator).err().map(|e| e.status), Some(StatusCode::FORBIDDEN));
        assert_eq!(t.check(Some(&bearer("op-me")), Role::Operator).map(|i| i.name).ok().as_deref(), Some("release-lead"));
        assert_eq!(t.check(Some(&bearer("nope")), Role::Reader).err().map(|e| e.code), Some("invalid_token"));
        assert_eq!(t.check(None, Role::Reader).err().map(|e| e.code), Some("missing_token"));
    }

    #[test]
    fn bad_lines_name_the_line() {
        let dir = std::env::temp_dir().join(format!("cavra-tokens-bad-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join("tokens");
        std::fs::write(&file, "\nsha256:abc reader x\n").expect("write");
        let e = Tokens::load(&file).err().unwrap_or_default();
        assert!(e.contains(":2:"), "{e}");
        assert!(!e.contains("abc"), "a hash is never echoed: {e}");
    }
}
