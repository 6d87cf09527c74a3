//! `cavra lsp` as an editor meets it: the test starts the binary, speaks
//! JSON-RPC to it over its stdin and stdout, opens a copy of the bundled
//! routing pack with a mistake in it (inside a copy of `rules/`, so its
//! module resolves from disk), and checks each answer: the diagnostic with
//! `check`'s code, message and place; hover types; go to definition within
//! the pack and into the module; completion of fields after `.` and of
//! names; the outline; formatting; and a clean shutdown. Every read has its
//! own deadline, so a server that stops answering fails the test instead of
//! hanging it.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(60);

struct Server {
    child: Child,
    stdin: ChildStdin,
    messages: Receiver<Value>,
    next_id: i64,
}

impl Server {
    fn start(dir: &Path) -> Server {
        let mut child = Command::new(cavra_tests::cavra_binary())
            .arg("lsp")
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start cavra lsp");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (send, messages) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut length = None;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(n) = line.strip_prefix("Content-Length: ") {
                        length = n.parse::<usize>().ok();
                    }
                }
                let mut body = vec![0; length.expect("a Content-Length header")];
                if reader.read_exact(&mut body).is_err() {
                    return;
                }
                let message: Value = serde_json::from_slice(&body).expect("a JSON message");
                if send.send(message).is_err() {
                    return;
                }
            }
        });
        Server { child, stdin, messages, next_id: 1 }
    }

    fn send(&mut self, message: Value) {
        let body = message.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).expect("write to the server");
        self.stdin.flush().expect("flush");
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Sends a request and waits for its response (notifications in between are kept aside).
    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        self.wait_for(|m| m["id"] == id)
    }

    fn wait_for(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        let end = Instant::now() + DEADLINE;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.messages.recv_timeout(left) {
                Ok(m) if wanted(&m) => return m,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => panic!("cavra lsp did not answer within {DEADLINE:?}"),
                Err(RecvTimeoutError::Disconnected) => panic!("cavra lsp closed its output"),
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The 0-based (line, UTF-16 column) of the `nth` occurrence of `needle` (plus `shift` bytes).
fn position_of(text: &str, needle: &str, nth: usize, shift: usize) -> Value {
    let offset = text.match_indices(needle).nth(nth).unwrap_or_else(|| panic!("`{needle}` #{nth} in the pack")).0 + shift;
    let line = text[..offset].matches('\n').count();
    let column = offset - text[..offset].rfind('\n').map_or(0, |i| i + 1);
    json!({"line": line, "character": column})
}

#[test]
fn an_editor_gets_diagnostics_hover_definitions_completion_symbols_and_formatting() {
    let dir = cavra_tests::fresh_dir(cavra_tests::crate_dir().join("../target/tmp/lsp"));
    let rules = dir.join("rules");
    cavra_tests::copy_dir(&cavra_tests::crate_dir().join("../rules"), &rules);
    let pack_path = rules.join("routing.cavra");
    let bundled = std::fs::read_to_string(&pack_path).expect("the routing pack");
    // The mistake: a field the window type does not have.
    let text = bundled.replacen("w.owners is empty", "w.ownres is empty", 1);
    assert_ne!(text, bundled, "the pack reads `w.owners is empty`");
    let uri = format!("file://{}", pack_path.canonicalize().expect("absolute path").display());
    let module_path = rules.join("common/routing_policy.cavra").canonicalize().expect("the module");
    let module = std::fs::read_to_string(&module_path).expect("the module's text");

    let mut server = Server::start(&dir);
    let init = server.request("initialize", json!({"processId": null, "rootUri": null, "capabilities": {}}));
    let capabilities = &init["result"]["capabilities"];
    for capability in ["hoverProvider", "definitionProvider", "completionProvider", "documentSymbolProvider", "documentFormattingProvider"] {
        assert!(!capabilities[capability].is_null(), "initialize offers {capability}: {init}");
    }
    server.notify("initialized", json!({}));

    // Diagnostics as the author types: the code, message and place `cavra check` gives.
    server.notify("textDocument/didOpen", json!({"textDocument": {"uri": uri, "languageId": "cavra", "version": 1, "text": text}}));
    let published = server.wait_for(|m| m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri.as_str());
    let diagnostics = published["params"]["diagnostics"].as_array().expect("diagnostics").clone();
    assert_eq!(diagnostics.len(), 1, "one mistake, one diagnostic: {published}");
    let d = &diagnostics[0];
    assert_eq!(d["code"], "E0101");
    assert_eq!(d["severity"], 1);
    assert!(d["message"].as_str().unwrap_or("").starts_with("unknown field `ownres` on `MaintenanceWindow`"), "{d}");
    assert!(d["message"].as_str().unwrap_or("").contains("help: did you mean `owners`?"), "{d}");
    let start = position_of(&text, "ownres", 0, 0);
    assert_eq!(d["range"]["start"], start);
    assert_eq!(d["range"]["end"]["character"], start["character"].as_u64().expect("column") + 6);

    // Hover: an input's type, a let's type, a field's type.
    let at = |needle: &str, nth: usize, shift: usize| json!({"textDocument": {"uri": uri}, "position": position_of(&text, needle, nth, shift)});
    let hover = server.request("textDocument/hover", at("static input policy", 0, 14));
    assert!(hover["result"]["contents"]["value"].as_str().unwrap_or("").contains("input policy: RoutingPolicy"), "{hover}");
    let hover = server.request("textDocument/hover", at("when window exists", 0, 6));
    assert!(hover["result"]["contents"]["value"].as_str().unwrap_or("").contains("let window: MaintenanceWindow?"), "{hover}");
    let hover = server.request("textDocument/hover", at("window.reason", 0, 8));
    assert!(hover["result"]["contents"]["value"].as_str().unwrap_or("").contains("(field) reason: text"), "{hover}");

    // Go to definition: a let in the pack, a type in the module (on disk).
    let definition = server.request("textDocument/definition", at("when window exists", 0, 6));
    assert_eq!(definition["result"]["uri"], uri.as_str());
    assert_eq!(definition["result"]["range"]["start"], position_of(&text, "let window", 0, 4), "{definition}");
    let definition = server.request("textDocument/definition", at(": RoutingPolicy", 0, 3));
    let module_uri = format!("file://{}", module_path.display());
    assert_eq!(definition["result"]["uri"], module_uri.as_str(), "{definition}");
    assert_eq!(definition["result"]["range"]["start"], position_of(&module, "type RoutingPolicy", 0, 5), "{definition}");

    // Completion: the fields after `w.`, the names elsewhere.
    let typing = text.replacen("and (w.ownres is empty", "and (w.", 1);
    server.notify("textDocument/didChange", json!({"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": typing}]}));
    let completion = server.request(
        "textDocument/completion",
        json!({"textDocument": {"uri": uri}, "position": position_of(&typing, "and (w.", 0, 7), "context": {"triggerKind": 2, "triggerCharacter": "."}}),
    );
    let labels: Vec<&str> = completion["result"].as_array().expect("items").iter().filter_map(|i| i["label"].as_str()).collect();
    for field in ["window_id", "start_at", "end_at", "recurrence", "owners", "providers", "schedule_ids", "reason"] {
        assert!(labels.contains(&field), "completion after `w.` offers `{field}`: {labels:?}");
    }
    assert!(!labels.contains(&"and"), "only fields after a dot: {labels:?}");
    server.notify("textDocument/didChange", json!({"textDocument": {"uri": uri, "version": 3}, "contentChanges": [{"text": text}]}));
    let completion = server.request("textDocument/completion", at("when window exists", 0, 5));
    let labels: Vec<&str> = completion["result"].as_array().expect("items").iter().filter_map(|i| i["label"].as_str()).collect();
    for name in ["policy", "owner", "window", "exists", "active", "RoutingPolicy"] {
        assert!(labels.contains(&name), "completion offers `{name}`: {labels:?}");
    }

    // The outline.
    let symbols = server.request("textDocument/documentSymbol", json!({"textDocument": {"uri": uri}}));
    let names: Vec<&str> = symbols["result"].as_array().expect("symbols").iter().filter_map(|s| s["name"].as_str()).collect();
    for name in ["policy", "now", "owner", "window", "route"] {
        assert!(names.contains(&name), "the outline has `{name}`: {names:?}");
    }
    let route = symbols["result"].as_array().expect("symbols").iter().find(|s| s["name"] == "route" && s["detail"] == "decision").expect("the decision");
    assert!(route["children"].as_array().is_some_and(|arms| arms.len() == 4), "the decision lists its three arms and `otherwise`: {route}");

    // Formatting: `cavra fmt` of a badly laid out document.
    let messy = text.replacen("static input policy: RoutingPolicy", "static   input policy :RoutingPolicy", 1);
    server.notify("textDocument/didChange", json!({"textDocument": {"uri": uri, "version": 4}, "contentChanges": [{"text": messy}]}));
    let edits = server.request("textDocument/formatting", json!({"textDocument": {"uri": uri}, "options": {"tabSize": 2, "insertSpaces": true}}));
    assert_eq!(edits["result"][0]["newText"], text.as_str(), "{edits}");

    // A request for a document that is not open is an error, not a crash.
    let closed = server.request("textDocument/hover", json!({"textDocument": {"uri": "file:///nowhere.cavra"}, "position": {"line": 0, "character": 0}}));
    assert!(closed["error"]["message"].as_str().unwrap_or("").contains("not open"), "{closed}");

    let shutdown = server.request("shutdown", Value::Null);
    assert!(shutdown["error"].is_null(), "{shutdown}");
    server.notify("exit", Value::Null);
    let end = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = server.child.try_wait().expect("the server's status") {
            break status;
        }
        assert!(Instant::now() < end, "cavra lsp did not exit within {DEADLINE:?} of `exit`");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "cavra lsp exits 0 after shutdown and exit: {status}");
}
