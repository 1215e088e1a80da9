//! The platform's own metrics in the Prometheus text format: requests by route and status,
//! a latency histogram, and gauges read at scrape time (jobs by state).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, String, u16), u64>,
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *m.requests
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default() += 1;
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                m.buckets[i] += 1;
            }
        }
        m.count += 1;
        m.sum += secs;
    }

    /// Renders everything, with `gauges` (name, help, labelled values) read by the caller.
    pub fn render(&self, jobs: &[(String, i64)]) -> String {
        let m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP maocloud_build_info The running Maocloud version."
        );
        let _ = writeln!(out, "# TYPE maocloud_build_info gauge");
        let _ = writeln!(
            out,
            "maocloud_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        let _ = writeln!(
            out,
            "# HELP maocloud_http_requests_total HTTP requests by method, route and status."
        );
        let _ = writeln!(out, "# TYPE maocloud_http_requests_total counter");
        for ((method, route, status), n) in &m.requests {
            let _ = writeln!(
                out,
                "maocloud_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(method),
                escape(route)
            );
        }
        let _ = writeln!(
            out,
            "# HELP maocloud_http_request_duration_seconds HTTP request latency."
        );
        let _ = writeln!(
            out,
            "# TYPE maocloud_http_request_duration_seconds histogram"
        );
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "maocloud_http_request_duration_seconds_bucket{{le=\"{b}\"}} {}",
                m.buckets[i]
            );
        }
        let _ = writeln!(
            out,
            "maocloud_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {}",
            m.count
        );
        let _ = writeln!(out, "maocloud_http_request_duration_seconds_sum {}", m.sum);
        let _ = writeln!(
            out,
            "maocloud_http_request_duration_seconds_count {}",
            m.count
        );
        let _ = writeln!(out, "# HELP maocloud_jobs Background jobs by state.");
        let _ = writeln!(out, "# TYPE maocloud_jobs gauge");
        for (state, n) in jobs {
            let _ = writeln!(out, "maocloud_jobs{{state=\"{}\"}} {n}", escape(state));
        }
        out
    }
}
