//! Prometheus metrics (text exposition format 0.0.4): requests and their
//! latencies per route, decisions by action and category, deliveries by
//! provider and outcome.
//!
//! No client can grow the label set, so neither the memory nor the size of
//! `/metrics`: every label takes its value from a bounded set, and anything
//! outside it is counted as `other`.
//!
//! | label | values |
//! |---|---|
//! | `route` | the route templates of the endpoints; any other path is `other` |
//! | `method` | `GET`, `HEAD`, `POST`, `PUT`, `DELETE`, `PATCH`, `OPTIONS`, `CONNECT`, `TRACE`; an extension method is `other` |
//! | `status` | the statuses the server answers with ([`STATUSES`]); any other is `other` |
//! | `outcome` | `delivered`, `retryable_failure`, `permanent_failure`, `failed`; any other is `other` |
//! | `provider` | names (letters, digits, `_`, `-`, `.`; at most 64 characters), the first [`MAX_PROVIDERS`] seen; past that, or not a name, `other` |
//! | `action`, `category` | names, the first [`MAX_DECISION_LABELS`] pairs seen; past that, or not a name, `other` |
//!
//! Providers, actions and categories come from the server's own plugins,
//! packs and routing policy, but a caller can name a provider in a request's
//! `routing_policy`, so those sets are capped as well.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// The value of any label outside its set.
pub(crate) const OTHER: &str = "other";

/// The methods counted by name (RFC 9110's, and PATCH).
const METHODS: [&str; 9] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"];

/// The statuses the server answers with, counted by code.
const STATUSES: [(u16, &str); 16] = [
    (200, "200"),
    (201, "201"),
    (204, "204"),
    (400, "400"),
    (401, "401"),
    (403, "403"),
    (404, "404"),
    (405, "405"),
    (408, "408"),
    (409, "409"),
    (413, "413"),
    (415, "415"),
    (422, "422"),
    (429, "429"),
    (500, "500"),
    (503, "503"),
];

/// The delivery outcomes (`AttemptOutcome` of the plugin host, as text).
const OUTCOMES: [&str; 5] = ["delivered", "retryable_failure", "permanent_failure", "failed", "interrupted"];

/// Distinct providers counted by name; later ones are `other`.
const MAX_PROVIDERS: usize = 32;

/// Distinct (action, category) pairs counted by name; later ones are `other`.
const MAX_DECISION_LABELS: usize = 128;

/// Longest name a free-form label keeps.
const MAX_NAME_CHARS: usize = 64;

/// Latency bucket bounds, in seconds.
const BUCKETS: [f64; 14] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(&'static str, &'static str, &'static str), u64>,
    latency: BTreeMap<&'static str, Histogram>,
    decisions: BTreeMap<(String, String), u64>,
    deliveries: BTreeMap<(String, &'static str), u64>,
}

#[derive(Default)]
pub(crate) struct Metrics {
    inner: Mutex<Inner>,
}

/// The `method` label of a request method.
pub(crate) fn method_label(method: &str) -> &'static str {
    METHODS.iter().find(|m| **m == method).copied().unwrap_or(OTHER)
}

/// The `status` label of a status code.
fn status_label(status: u16) -> &'static str {
    STATUSES.iter().find(|(code, _)| *code == status).map_or(OTHER, |(_, label)| *label)
}

/// The `outcome` label of a delivery outcome.
fn outcome_label(outcome: &str) -> &'static str {
    OUTCOMES.iter().find(|o| **o == outcome).copied().unwrap_or(OTHER)
}

/// Whether a free-form value may be a label as it is: a short name, so
/// that nothing needs escaping and no value is a document.
fn is_name(value: &str) -> bool {
    !value.is_empty() && value.len() <= MAX_NAME_CHARS && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts a request. `route` is a route template or [`OTHER`] (templates
    /// are string literals of the router, a fixed set); the method and status
    /// are reduced to their labels here.
    pub(crate) fn request(&self, route: &'static str, method: &str, status: u16, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let key = (route, method_label(method), status_label(status));
        let mut inner = self.lock();
        *inner.requests.entry(key).or_default() += 1;
        let h = inner.latency.entry(route).or_default();
        h.count += 1;
        h.sum += seconds;
        for (bound, count) in BUCKETS.iter().zip(h.counts.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
    }

    pub(crate) fn decisions<'a>(&self, outcomes: impl IntoIterator<Item = (&'a str, &'a str)>) {
        let mut inner = self.lock();
        for (action, category) in outcomes {
            let mut key = if is_name(action) && is_name(category) { (action.to_string(), category.to_string()) } else { (OTHER.into(), OTHER.into()) };
            if !inner.decisions.contains_key(&key) && inner.decisions.len() >= MAX_DECISION_LABELS {
                key = (OTHER.into(), OTHER.into());
            }
            *inner.decisions.entry(key).or_default() += 1;
        }
    }

    pub(crate) fn deliveries<'a>(&self, outcomes: impl IntoIterator<Item = (&'a str, &'a str)>) {
        let mut inner = self.lock();
        for (provider, outcome) in outcomes {
            let outcome = outcome_label(outcome);
            let known = inner.deliveries.keys().any(|(p, _)| p == provider);
            let providers = || inner.deliveries.keys().map(|(p, _)| p.as_str()).filter(|p| *p != OTHER).collect::<std::collections::BTreeSet<_>>().len();
            let provider = if is_name(provider) && (known || providers() < MAX_PROVIDERS) { provider } else { OTHER };
            *inner.deliveries.entry((provider.to_string(), outcome)).or_default() += 1;
        }
    }

    pub(crate) fn render(&self) -> String {
        let inner = self.lock();
        let mut out = String::new();
        out.push_str("# HELP cavra_http_requests_total HTTP requests by route template, method and status.\n");
        out.push_str("# TYPE cavra_http_requests_total counter\n");
        for ((route, method, status), n) in &inner.requests {
            let _ = writeln!(out, "cavra_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}");
        }
        out.push_str("# HELP cavra_http_request_duration_seconds Time from request to response, by route template.\n");
        out.push_str("# TYPE cavra_http_request_duration_seconds histogram\n");
        for (route, h) in &inner.latency {
            for (bound, count) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(out, "cavra_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {count}");
            }
            let _ = writeln!(out, "cavra_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "cavra_http_request_duration_seconds_sum{{route=\"{route}\"}} {}", h.sum);
            let _ = writeln!(out, "cavra_http_request_duration_seconds_count{{route=\"{route}\"}} {}", h.count);
        }
        out.push_str("# HELP cavra_decisions_total Rule decisions made through the API, by action and category.\n");
        out.push_str("# TYPE cavra_decisions_total counter\n");
        for ((action, category), n) in &inner.decisions {
            let _ = writeln!(out, "cavra_decisions_total{{action=\"{action}\",category=\"{category}\"}} {n}");
        }
        out.push_str("# HELP cavra_deliveries_total Final notification delivery outcomes, by provider and outcome.\n");
        out.push_str("# TYPE cavra_deliveries_total counter\n");
        for ((provider, outcome), n) in &inner.deliveries {
            let _ = writeln!(out, "cavra_deliveries_total{{provider=\"{provider}\",outcome=\"{outcome}\"}} {n}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.request("/healthz", "GET", 200, Duration::from_micros(300));
        m.request("/healthz", "GET", 200, Duration::from_millis(30));
        m.decisions([("suppress", "maintenance_window"), ("deliver", "deliver"), ("deliver", "deliver")]);
        m.deliveries([("teams", "delivered")]);
        let text = m.render();
        assert!(text.contains("cavra_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 2"), "{text}");
        assert!(text.contains("cavra_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.0005\"} 1"), "{text}");
        assert!(text.contains("cavra_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.05\"} 2"), "{text}");
        assert!(text.contains("cavra_decisions_total{action=\"deliver\",category=\"deliver\"} 2"), "{text}");
        assert!(text.contains("cavra_deliveries_total{provider=\"teams\",outcome=\"delivered\"} 1"), "{text}");
    }

    #[test]
    fn finding_3_unknown_methods_and_statuses_are_other() {
        let m = Metrics::default();
        for i in 0..500 {
            m.request(OTHER, &format!("X-METHOD-{i}"), 404, Duration::from_micros(10));
            m.request("/healthz", &format!("Y{i}"), 405, Duration::from_micros(10));
        }
        m.request("/healthz", "GET", 299, Duration::from_micros(10));
        let text = m.render();
        assert!(text.contains("cavra_http_requests_total{route=\"other\",method=\"other\",status=\"404\"} 500"), "{text}");
        assert!(text.contains("cavra_http_requests_total{route=\"/healthz\",method=\"other\",status=\"405\"} 500"), "{text}");
        assert!(text.contains("cavra_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"other\"} 1"), "{text}");
        assert_eq!(text.lines().filter(|l| l.starts_with("cavra_http_requests_total")).count(), 3, "{text}");
    }

    #[test]
    fn finding_3_free_form_labels_are_capped_and_checked() {
        let m = Metrics::default();
        for i in 0..1000 {
            m.deliveries([(format!("provider-{i}").as_str(), "delivered")]);
            m.decisions([(format!("action{i}").as_str(), "category")]);
        }
        m.deliveries([("bad\"provider\n", "delivered"), ("provider-0", "exploded")]);
        m.decisions([("a b", "c")]);
        let text = m.render();
        let deliveries = text.lines().filter(|l| l.starts_with("cavra_deliveries_total")).count();
        assert_eq!(deliveries, MAX_PROVIDERS + 2, "{text}");
        assert!(text.contains("cavra_deliveries_total{provider=\"other\",outcome=\"delivered\"} 969"), "{text}");
        assert!(text.contains("cavra_deliveries_total{provider=\"provider-0\",outcome=\"other\"} 1"), "{text}");
        let decisions = text.lines().filter(|l| l.starts_with("cavra_decisions_total")).count();
        assert_eq!(decisions, MAX_DECISION_LABELS + 1, "{text}");
        assert!(text.contains("cavra_decisions_total{action=\"other\",category=\"other\"} 873"), "{text}");
        assert!(!text.contains("bad"), "{text}");
    }
}
