//! Prometheus metrics (text exposition format 0.0.4): requests and their
//! latencies per route, decisions by action and category, deliveries by
//! provider and outcome. Labels are route templates, never raw paths, so a
//! client cannot grow the label set.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

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
    requests: BTreeMap<(&'static str, String, u16), u64>,
    latency: BTreeMap<&'static str, Histogram>,
    decisions: BTreeMap<(String, String), u64>,
    deliveries: BTreeMap<(String, String), u64>,
}

#[derive(Default)]
pub(crate) struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn request(&self, route: &'static str, method: &str, status: u16, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let mut inner = self.lock();
        *inner.requests.entry((route, method.to_string(), status)).or_default() += 1;
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
            *inner.decisions.entry((action.to_string(), category.to_string())).or_default() += 1;
        }
    }

    pub(crate) fn deliveries<'a>(&self, outcomes: impl IntoIterator<Item = (&'a str, &'a str)>) {
        let mut inner = self.lock();
        for (provider, outcome) in outcomes {
            *inner.deliveries.entry((provider.to_string(), outcome.to_string())).or_default() += 1;
        }
    }

    pub(crate) fn render(&self) -> String {
        let inner = self.lock();
        let mut out = String::new();
        out.push_str("# HELP cavra_http_requests_total HTTP requests by route template, method and status.\n");
        out.push_str("# TYPE cavra_http_requests_total counter\n");
        for ((route, method, status), n) in &inner.requests {
            let _ = writeln!(out, "cavra_http_requests_total{{route=\"{route}\",method=\"{}\",status=\"{status}\"}} {n}", escape(method));
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
            let _ = writeln!(out, "cavra_decisions_total{{action=\"{}\",category=\"{}\"}} {n}", escape(action), escape(category));
        }
        out.push_str("# HELP cavra_deliveries_total Final notification delivery outcomes, by provider and outcome.\n");
        out.push_str("# TYPE cavra_deliveries_total counter\n");
        for ((provider, outcome), n) in &inner.deliveries {
            let _ = writeln!(out, "cavra_deliveries_total{{provider=\"{}\",outcome=\"{}\"}} {n}", escape(provider), escape(outcome));
        }
        out
    }
}

/// Label values are escaped as the exposition format requires.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
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
}
