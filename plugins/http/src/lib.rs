//! Shared HTTP delivery for cavra's bundled webhook connectors (Slack, Teams,
//! generic webhook): one blocking JSON `POST` with a timeout, an
//! `Idempotency-Key` header, no redirects, and a classification of the result
//! into an [`Outcome`] whose message never contains the URL path or query, a
//! header value, or a body.
//!
//! Built on `ureq` (blocking, rustls for TLS). Connectors are linked into
//! separate libraries, so each gets its own copy of this crate; agents are
//! cached per timeout so that the TLS configuration is built once per library.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use cavra_connector_api::{redact_target, ConfigError, Outcome};

/// The header that carries [`Notification::idempotency_key`](cavra_connector_api::Notification::idempotency_key).
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// One request to send.
pub struct JsonPost<'a> {
    /// The full webhook URL (secret: never printed).
    pub url: &'a str,
    /// The JSON body, already serialised (signatures are computed over these exact bytes).
    pub body: Vec<u8>,
    /// Sent as `Idempotency-Key`.
    pub idempotency_key: &'a str,
    /// Extra headers, e.g. a signature or `Authorization` (values are secret: never printed).
    pub headers: Vec<(&'static str, String)>,
    /// Whole-request timeout (connect, send, receive).
    pub timeout: Duration,
}

/// Checks that `url` is an absolute `http`/`https` URL with a host. The error
/// names the key, never the value.
pub fn validate_url(key: &str, url: &str) -> Result<(), ConfigError> {
    let lower = url.trim().to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        return Err(ConfigError::invalid(key, "must be an http:// or https:// URL"));
    }
    if redact_target(url).ends_with("[redacted]") {
        return Err(ConfigError::invalid(key, "must name a valid host"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConfigError::invalid(key, "must not contain spaces or control characters"));
    }
    Ok(())
}

/// Sends the request and classifies the result: 2xx delivered; 408, 425, 429,
/// 5xx, connection failures and timeouts retryable; everything else permanent.
pub fn post_json(request: &JsonPost<'_>) -> Outcome {
    let agent = agent(request.timeout);
    let mut builder = agent.post(request.url).header("Content-Type", "application/json").header(IDEMPOTENCY_HEADER, request.idempotency_key);
    for (name, value) in &request.headers {
        builder = builder.header(*name, value.as_str());
    }
    match builder.send(&request.body[..]) {
        Ok(response) => Outcome::from_http_status(response.status().as_u16()),
        Err(e) => classify_error(&e),
    }
}

/// Maps a transport error to an outcome with a message of our own: ureq's
/// `Display` may quote the URL.
fn classify_error(e: &ureq::Error) -> Outcome {
    use ureq::Error as E;
    match e {
        E::StatusCode(code) => Outcome::from_http_status(*code),
        E::Timeout(_) => Outcome::retryable(None, "timed out waiting for the provider"),
        E::HostNotFound => Outcome::retryable(None, "provider host not found (DNS)"),
        E::ConnectionFailed => Outcome::retryable(None, "could not connect to the provider"),
        E::Io(io) => Outcome::retryable(None, format!("connection error: {}", io_kind(io))),
        E::Protocol(_) | E::BodyStalled => Outcome::retryable(None, "the provider broke the HTTP exchange"),
        E::ConnectProxyFailed(_) => Outcome::retryable(None, "could not connect through the HTTP proxy"),
        E::Tls(_) | E::TlsRequired | E::Pem(_) | E::Rustls(_) => Outcome::permanent(None, "TLS failure talking to the provider (certificate or handshake)"),
        E::BadUri(_) | E::Http(_) | E::InvalidProxyUrl => Outcome::permanent(None, "the configured URL is not a valid HTTP URL"),
        E::RequireHttpsOnly(_) => Outcome::permanent(None, "the configured URL must use https"),
        E::RedirectFailed | E::TooManyRedirects => Outcome::permanent(None, "the provider redirected; webhook URLs must not redirect"),
        E::LargeResponseHeader(..) | E::BodyExceedsLimit(_) => Outcome::retryable(None, "the provider's response was too large"),
        _ => Outcome::retryable(None, "HTTP client error"),
    }
}

fn io_kind(e: &std::io::Error) -> String {
    // The kind only: some I/O errors carry a message with addresses in it.
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => "connection refused".into(),
        K::ConnectionReset => "connection reset".into(),
        K::ConnectionAborted => "connection aborted".into(),
        K::TimedOut | K::WouldBlock => "timed out".into(),
        K::UnexpectedEof => "connection closed early".into(),
        K::BrokenPipe => "broken pipe".into(),
        kind => format!("{kind:?}").to_lowercase(),
    }
}

/// One agent per distinct timeout, kept for the life of the library.
fn agent(timeout: Duration) -> ureq::Agent {
    static AGENTS: Mutex<Vec<(Duration, ureq::Agent)>> = Mutex::new(Vec::new());
    let mut agents = AGENTS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, agent)) = agents.iter().find(|(t, _)| *t == timeout) {
        return agent.clone();
    }
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        // Statuses are outcomes to classify, not errors.
        .http_status_as_error(false)
        // A redirect is returned as-is (and refused): following it would send
        // the notification and its headers to another address.
        .max_redirects(0)
        // No pooled connections: a reused connection the provider has closed
        // would fail a POST that cannot safely be replayed by the client.
        .max_idle_connections(0)
        .max_idle_connections_per_host(0)
        .user_agent(concat!("cavra-connector/", env!("CARGO_PKG_VERSION")))
        .build();
    let agent: ureq::Agent = config.into();
    if agents.len() < 16 {
        agents.push((timeout, agent.clone()));
    }
    agent
}

/// Lower-case hex of `bytes` (for signatures).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_validation_names_the_key_only() {
        assert!(validate_url("url", "https://hooks.example.com/x/CANARY").is_ok());
        for bad in ["ftp://x/CANARY", "CANARY", "https:///CANARY", "https://exa mple.com/CANARY"] {
            let err = validate_url("url", bad).expect_err(bad);
            assert!(err.message().contains("`url`") && !err.message().contains("CANARY"), "{err}");
        }
    }

    #[test]
    fn connection_refused_is_retryable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let url = format!("http://127.0.0.1:{port}/hook/CANARY?token=CANARY");
        let outcome = post_json(&JsonPost { url: &url, body: b"{}".to_vec(), idempotency_key: "k", headers: vec![], timeout: Duration::from_secs(2) });
        match outcome {
            Outcome::RetryableFailure { message, status_code: None } => assert!(!message.contains("CANARY"), "{message}"),
            other => panic!("expected retryable, got {other:?}"),
        }
    }

    #[test]
    fn hex_encodes() {
        assert_eq!(hex(&[0x00, 0xab, 0x7f]), "00ab7f");
    }
}
