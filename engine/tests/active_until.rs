//! `active_until(w, t)`: the end of the open period of a window that
//! contains `t` (a one-off window's `end_at`; a recurring window's current
//! occurrence, cut at `end_at`), and null when the window is not open.

use serde_json::json;
use std::collections::HashMap;

const PACK: &str = r#"
pack windows
type Window {
  start_at: time?
  end_at: time?
  recurrence: recurrence?
}
input window: Window
input now: time
decision until {
  when active_until(window, now) exists => open window reason "until {active_until(window, now) ?? now}"
  otherwise => closed window
}
"#;

fn until(window: serde_json::Value, now: &str) -> String {
    let pack = cavra_engine::compile("windows.cavra", PACK).map_err(|d| d.render(false)).expect("compiles");
    let program = pack.bind(&HashMap::new()).expect("binds");
    let mut inputs = program.inputs();
    program.set_input(&mut inputs, "window", &window).expect("window");
    program.set_input(&mut inputs, "now", &json!(now)).expect("now");
    let outcome = program.decide("until", &inputs).expect("decides");
    match outcome.reason().and_then(|r| r.as_text()) {
        Some(reason) => reason.to_string(),
        None => outcome.action.to_string(),
    }
}

#[test]
fn a_one_off_window_is_open_until_its_end() {
    let freeze = json!({"start_at": "2026-05-21T18:00:00Z", "end_at": "2026-05-21T20:00:00Z"});
    assert_eq!(until(freeze.clone(), "2026-05-21T18:00:00Z"), "until 2026-05-21T20:00:00Z");
    assert_eq!(until(freeze.clone(), "2026-05-21T19:59:59Z"), "until 2026-05-21T20:00:00Z");
    assert_eq!(until(freeze.clone(), "2026-05-21T20:00:00Z"), "closed", "the end is exclusive");
    assert_eq!(until(freeze, "2026-05-21T17:59:59Z"), "closed");
}

#[test]
fn a_recurring_window_is_open_until_the_end_of_its_occurrence_in_local_time() {
    // Friday 18:00-20:00 Berlin: 17:00-19:00Z in winter, 16:00-18:00Z in summer.
    let weekly = json!({"recurrence": {"weekdays": ["friday"], "start_time": "18:00", "end_time": "20:00", "time_zone": "Europe/Berlin"}});
    assert_eq!(until(weekly.clone(), "2026-03-27T17:30:00Z"), "until 2026-03-27T19:00:00Z");
    assert_eq!(until(weekly.clone(), "2026-05-22T16:00:00Z"), "until 2026-05-22T18:00:00Z");
    assert_eq!(until(weekly.clone(), "2026-05-22T18:00:00Z"), "closed");
    // An overnight occurrence ends the next day; `end_at` cuts it short.
    let overnight = json!({"recurrence": {"start_time": "22:00", "end_time": "06:00", "time_zone": "UTC"}});
    assert_eq!(until(overnight.clone(), "2026-06-01T23:00:00Z"), "until 2026-06-02T06:00:00Z");
    let cut = json!({"recurrence": {"start_time": "22:00", "end_time": "06:00", "time_zone": "UTC"}, "end_at": "2026-06-02T03:00:00Z"});
    assert_eq!(until(cut.clone(), "2026-06-01T23:00:00Z"), "until 2026-06-02T03:00:00Z");
    assert_eq!(until(cut, "2026-06-02T04:00:00Z"), "closed");
}

#[test]
fn active_until_is_type_checked_like_active() {
    let bad = PACK.replace("active_until(window, now) exists", "active_until(window, 3) exists");
    let error = cavra_engine::compile("windows.cavra", &bad).err().map(|d| d.render(false)).unwrap_or_default();
    assert!(error.contains("`active_until` needs a time as its second argument"), "{error}");
}
