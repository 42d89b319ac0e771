//! Prometheus metrics, in the text exposition format: requests and their latencies per route,
//! and, read when scraped, queue depths per tenant.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Latency histogram buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latencies: Mutex<BTreeMap<(String, String), Histogram>>,
}

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Metrics {
    /// Record one request. `route` is the matched route template, never the raw path, so
    /// the number of series stays bounded.
    pub fn record(&self, method: &str, route: &str, status: u16, took: Duration) {
        let key = (method.to_string(), route.to_string());
        *self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((key.0.clone(), key.1.clone(), status))
            .or_default() += 1;
        let secs = took.as_secs_f64();
        let mut latencies = self.latencies.lock().unwrap_or_else(|e| e.into_inner());
        let h = latencies.entry(key).or_default();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
    }

    /// The exposition text, with `gauges` (name, help, labelled values) appended.
    pub fn render(&self, gauges: &[Gauge]) -> String {
        let mut out = String::new();
        out.push_str("# HELP itsmflow_http_requests_total HTTP requests handled.\n");
        out.push_str("# TYPE itsmflow_http_requests_total counter\n");
        for ((method, route, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "itsmflow_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }
        out.push_str("# HELP itsmflow_http_request_duration_seconds Time to handle a request.\n");
        out.push_str("# TYPE itsmflow_http_request_duration_seconds histogram\n");
        for ((method, route), h) in self
            .latencies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let labels = format!("method=\"{method}\",route=\"{}\"", escape(route));
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "itsmflow_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "itsmflow_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "itsmflow_http_request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "itsmflow_http_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
        for g in gauges {
            let _ = writeln!(out, "# HELP {} {}", g.name, g.help);
            let _ = writeln!(out, "# TYPE {} gauge", g.name);
            for (labels, value) in &g.values {
                let labels: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                    .collect();
                let _ = writeln!(out, "{}{{{}}} {value}", g.name, labels.join(","));
            }
        }
        out
    }
}

pub struct Gauge {
    pub name: &'static str,
    pub help: &'static str,
    pub values: Vec<(Vec<(&'static str, String)>, f64)>,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_gauges() {
        let m = Metrics::default();
        m.record("GET", "/v1/queues", 200, Duration::from_millis(3));
        m.record("GET", "/v1/queues", 200, Duration::from_millis(30));
        let text = m.render(&[Gauge {
            name: "itsmflow_queue_depth",
            help: "Tasks not done.",
            values: vec![(
                vec![("tenant", "default".into()), ("queue", "sd".into())],
                4.0,
            )],
        }]);
        assert!(text.contains(
            "itsmflow_http_requests_total{method=\"GET\",route=\"/v1/queues\",status=\"200\"} 2"
        ));
        assert!(text.contains("le=\"0.005\"} 1"));
        assert!(text.contains("le=\"+Inf\"} 2"));
        assert!(text.contains("itsmflow_queue_depth{tenant=\"default\",queue=\"sd\"} 4"));
    }
}
