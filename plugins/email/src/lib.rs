//! The `email` connector: sends the notification as a plain-text e-mail over SMTP.
//!
//! Configuration (`CAVRA_CONNECTOR_CONFIG`):
//!
//! ```json
//! {"connectors": {"email": {
//!     "server": "smtp.example.com", "port": 587, "starttls": true,
//!     "from": "cavra <cavra@example.com>", "to": ["oncall@example.com"],
//!     "username_env": "SMTP_USER", "password_env": "SMTP_PASSWORD"}}}
//! ```
//!
//! * `starttls` (default `true`) upgrades the connection with STARTTLS and
//!   refuses to send without it; `false` sends in clear text (local relays,
//!   tests). `port` defaults to 587 with STARTTLS, 25 without.
//! * `username`/`password` are optional but go together.
//! * The idempotency key becomes the `Message-ID`, so a retried message is
//!   recognisably the same message to servers and mail clients.
//!
//! SMTP replies map to outcomes: 2xx delivered, 4xx (transient) and
//! connection failures retryable, 5xx permanent.

use cavra_connector_api::serde::Deserialize;
use cavra_connector_api::{connector_module, CallContext, ConfigError, Connector, ConnectorModuleRef, Notification, Outcome, Secret};
use lettre::message::{header::ContentType, Mailbox};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Message, SmtpTransport, Transport};

/// One address or several.
#[derive(Debug, Deserialize)]
#[serde(crate = "cavra_connector_api::serde", untagged)]
pub enum Recipients {
    /// `"a@example.com"`.
    One(String),
    /// `["a@example.com", "b@example.com"]`.
    Many(Vec<String>),
}

impl Recipients {
    fn list(&self) -> Vec<&str> {
        match self {
            Recipients::One(one) => vec![one.as_str()],
            Recipients::Many(many) => many.iter().map(String::as_str).collect(),
        }
    }
}

/// The SMTP settings.
#[derive(Debug, Deserialize)]
#[serde(crate = "cavra_connector_api::serde", deny_unknown_fields)]
pub struct EmailConfig {
    /// SMTP server host name.
    pub server: String,
    /// Port (default 587 with STARTTLS, 25 without).
    #[serde(default)]
    pub port: Option<u16>,
    /// Require STARTTLS (default true).
    #[serde(default = "yes")]
    pub starttls: bool,
    /// Sender mailbox, `name <addr>` or `addr`.
    pub from: String,
    /// Recipients.
    pub to: Recipients,
    /// SMTP user name.
    #[serde(default)]
    pub username: Option<Secret>,
    /// SMTP password.
    #[serde(default)]
    pub password: Option<Secret>,
}

fn yes() -> bool {
    true
}

impl EmailConfig {
    fn port(&self) -> u16 {
        self.port.unwrap_or(if self.starttls { 587 } else { 25 })
    }
}

/// The e-mail connector.
#[derive(Debug, Default)]
pub struct Email;

impl Connector for Email {
    type Config = EmailConfig;

    fn name(&self) -> &str {
        "email"
    }

    fn version(&self) -> &str {
        env!("CARGO_PKG_VERSION")
    }

    fn providers(&self) -> Vec<String> {
        vec!["email".to_owned()]
    }

    fn validate_config(&self, config: &EmailConfig) -> Result<(), ConfigError> {
        let server_ok = !config.server.is_empty() && config.server.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']'));
        if !server_ok {
            return Err(ConfigError::invalid("server", "must be a host name"));
        }
        if config.port == Some(0) {
            return Err(ConfigError::invalid("port", "must be between 1 and 65535"));
        }
        if config.from.parse::<Mailbox>().is_err() {
            return Err(ConfigError::invalid("from", "must be an e-mail address"));
        }
        let to = config.to.list();
        if to.is_empty() {
            return Err(ConfigError::invalid("to", "must name at least one recipient"));
        }
        if let Some(position) = to.iter().position(|a| a.parse::<Mailbox>().is_err()) {
            return Err(ConfigError::new(format!("key `to` entry {position} is not an e-mail address")));
        }
        if config.username.is_some() != config.password.is_some() {
            return Err(ConfigError::new("keys `username` and `password` must be given together"));
        }
        Ok(())
    }

    fn target(&self, config: &EmailConfig) -> String {
        format!("smtp://{}", config.server.to_ascii_lowercase())
    }

    fn deliver(&self, notification: &Notification, config: &EmailConfig, ctx: &CallContext) -> Outcome {
        let message = match build_message(notification, config) {
            Ok(message) => message,
            Err(e) => return Outcome::permanent(None, e.to_string()),
        };
        let builder = if config.starttls {
            match SmtpTransport::starttls_relay(&config.server) {
                Ok(builder) => builder,
                Err(_) => return Outcome::permanent(None, "cannot set up TLS for the SMTP server"),
            }
        } else {
            SmtpTransport::builder_dangerous(config.server.as_str())
        };
        let mut builder = builder.port(config.port()).timeout(Some(ctx.timeout));
        if let (Some(user), Some(password)) = (&config.username, &config.password) {
            builder = builder.credentials(Credentials::new(user.expose().to_owned(), password.expose().to_owned()));
        }
        match builder.build().send(&message) {
            Ok(response) => Outcome::delivered(u16::from(response.code())),
            Err(e) => classify(&e),
        }
    }
}

/// Builds the e-mail: subject = title, body = the rendered text, Message-ID from the idempotency key.
pub fn build_message(n: &Notification, config: &EmailConfig) -> Result<Message, ConfigError> {
    let from: Mailbox = config.from.parse().map_err(|_| ConfigError::invalid("from", "must be an e-mail address"))?;
    let mut builder = Message::builder().from(from).subject(n.title()).message_id(Some(message_id(&n.idempotency_key)));
    for (i, to) in config.to.list().into_iter().enumerate() {
        let mailbox: Mailbox = to.parse().map_err(|_| ConfigError::new(format!("key `to` entry {i} is not an e-mail address")))?;
        builder = builder.to(mailbox);
    }
    builder.header(ContentType::TEXT_PLAIN).body(n.render_text()).map_err(|_| ConfigError::new("could not build the e-mail (check `from` and `to`)"))
}

/// `<key@cavra.invalid>` with the key reduced to characters valid in a Message-ID.
fn message_id(key: &str) -> String {
    let clean: String = key.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')).collect();
    format!("<{clean}@cavra.invalid>")
}

fn classify(e: &lettre::transport::smtp::Error) -> Outcome {
    let status = e.status().map(u16::from);
    if e.is_permanent() {
        Outcome::permanent(status, format!("SMTP server refused the message ({})", status.unwrap_or(500)))
    } else if e.is_transient() {
        Outcome::retryable(status, format!("SMTP server deferred the message ({})", status.unwrap_or(400)))
    } else if e.is_timeout() {
        Outcome::retryable(None, "timed out talking to the SMTP server")
    } else if e.is_tls() {
        Outcome::permanent(None, "TLS failure with the SMTP server (STARTTLS unsupported, or certificate rejected)")
    } else if e.is_client() {
        Outcome::permanent(None, "SMTP client error (e.g. no authentication mechanism in common with the server)")
    } else {
        Outcome::retryable(None, "could not talk to the SMTP server (connection or protocol error)")
    }
}

/// The connector's module, as a host that links it calls it (cavra's
/// built-in `email` connector); `cavra-plugin-email` exports the same connector
/// as a plugin library.
pub fn module() -> ConnectorModuleRef {
    connector_module!(Email)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cavra_connector_api::serde_json::{self, json};
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::time::Duration;

    fn sample() -> Notification {
        serde_json::from_value(json!({
            "route_id": "route_1", "plan_id": "plan_1", "schedule_id": "drill", "owner": "ops",
            "escalation_owner": "lead", "provider": "email", "alert_level": "critical", "status": "needs_attention",
            "reason": "drill overdue", "acknowledgement_minutes": 60, "idempotency_key": "cavra-abc123",
            "created_at": "2026-05-21T19:00:00Z"
        }))
        .expect("notification")
    }

    fn config(port: u16) -> EmailConfig {
        serde_json::from_value(
            json!({"server": "127.0.0.1", "port": port, "starttls": false, "from": "cavra <cavra@example.com>", "to": ["a@example.com", "b@example.com"]}),
        )
        .expect("config")
    }

    /// A one-connection SMTP server speaking just enough SMTP; `data_reply`
    /// is what it answers after the message body. Returns the transcript.
    fn fake_smtp(data_reply: &'static str) -> (u16, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let handle = std::thread::spawn(move || {
            let (stream, _) = listener.accept().expect("accept");
            stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
            let mut out = stream.try_clone().expect("clone");
            let mut reader = BufReader::new(stream);
            let mut transcript = String::new();
            let _ = out.write_all(b"220 fake ESMTP\r\n");
            let mut in_data = false;
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                transcript.push_str(&line);
                let reply: &[u8] = if in_data {
                    if line == ".\r\n" {
                        in_data = false;
                        data_reply.as_bytes()
                    } else {
                        b""
                    }
                } else {
                    match line.get(..4).unwrap_or("").to_ascii_uppercase().as_str() {
                        "EHLO" => b"250-fake\r\n250 8BITMIME\r\n",
                        "DATA" => {
                            in_data = true;
                            b"354 go ahead\r\n"
                        }
                        "QUIT" => {
                            let _ = out.write_all(b"221 bye\r\n");
                            break;
                        }
                        _ => b"250 ok\r\n",
                    }
                };
                let _ = out.write_all(reply);
                line.clear();
            }
            transcript
        });
        (port, handle)
    }

    #[test]
    fn sends_over_plain_smtp() {
        let (port, server) = fake_smtp("250 queued\r\n");
        let ctx = CallContext { attempt: 1, timeout: Duration::from_secs(5) };
        let outcome = Email.deliver(&sample(), &config(port), &ctx);
        assert_eq!(outcome, Outcome::delivered(250));
        let transcript = server.join().expect("server");
        assert!(transcript.contains("RCPT TO:<a@example.com>") && transcript.contains("RCPT TO:<b@example.com>"), "{transcript}");
        assert!(transcript.contains("Message-ID: <cavra-abc123@cavra.invalid>"), "{transcript}");
        assert!(transcript.contains("Subject: [CRITICAL] rollback drill drill needs attention"), "{transcript}");
    }

    #[test]
    fn smtp_reply_classes_map_to_outcomes() {
        let ctx = CallContext { attempt: 1, timeout: Duration::from_secs(5) };
        let (port, server) = fake_smtp("451 try later\r\n");
        assert!(matches!(Email.deliver(&sample(), &config(port), &ctx), Outcome::RetryableFailure { status_code: Some(451), .. }));
        let _ = server.join();
        let (port, server) = fake_smtp("554 rejected\r\n");
        assert!(matches!(Email.deliver(&sample(), &config(port), &ctx), Outcome::PermanentFailure { status_code: Some(554), .. }));
        let _ = server.join();
    }

    #[test]
    fn validation_names_keys_not_values() {
        let mut c = config(25);
        c.to = Recipients::Many(vec!["ok@example.com".into(), "CANARY-not-an-address".into()]);
        let err = Email.validate_config(&c).expect_err("bad recipient");
        assert_eq!(err.to_string(), "key `to` entry 1 is not an e-mail address");
        c.to = Recipients::One("ok@example.com".into());
        c.username = Some(Secret::new("CANARY"));
        assert!(!Email.validate_config(&c).expect_err("no password").to_string().contains("CANARY"));
    }
}
