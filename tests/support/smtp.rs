//! A mail server for delivery tests: SMTP on 127.0.0.1, speaking just
//! enough of the protocol for a client that does not ask for STARTTLS, and
//! keeping every message it accepts (envelope and text).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One message as received.
#[derive(Clone, Debug, Default)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// Headers and body, as sent after `DATA`.
    pub data: String,
}

pub struct SmtpServer {
    pub port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
}

impl SmtpServer {
    /// Accepts connections on a thread of its own until the test process ends.
    pub fn start() -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("address").port();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::clone(&mails);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || {
                    // A client that stalls must not hold a test forever.
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                    let Ok(mut out) = stream.try_clone() else { return };
                    let mut reader = BufReader::new(stream);
                    let _ = out.write_all(b"220 cavra-test ESMTP\r\n");
                    let mut mail = Mail::default();
                    let mut in_data = false;
                    let mut line = String::new();
                    while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                        if in_data {
                            if line == ".\r\n" {
                                in_data = false;
                                shared.lock().expect("mails").push(std::mem::take(&mut mail));
                                let _ = out.write_all(b"250 queued\r\n");
                            } else {
                                mail.data.push_str(&line);
                            }
                            line.clear();
                            continue;
                        }
                        let command = line.get(..4).unwrap_or("").to_ascii_uppercase();
                        let argument = || line.split_once(':').map(|(_, a)| a.trim().trim_matches(['<', '>']).to_string()).unwrap_or_default();
                        let reply: &[u8] = match command.as_str() {
                            "EHLO" | "HELO" => b"250-cavra-test\r\n250 8BITMIME\r\n",
                            "MAIL" => {
                                mail.from = argument();
                                b"250 ok\r\n"
                            }
                            "RCPT" => {
                                mail.to.push(argument());
                                b"250 ok\r\n"
                            }
                            "DATA" => {
                                in_data = true;
                                b"354 go ahead\r\n"
                            }
                            "QUIT" => {
                                let _ = out.write_all(b"221 bye\r\n");
                                break;
                            }
                            _ => b"250 ok\r\n",
                        };
                        let _ = out.write_all(reply);
                        line.clear();
                    }
                });
            }
        });
        SmtpServer { port, mails }
    }

    /// The messages accepted so far.
    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().expect("mails").clone()
    }
}
