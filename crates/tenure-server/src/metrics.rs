//! `/metrics` in the Prometheus text exposition format (version 0.0.4), names prefixed
//! `tenure_` (the design's section 10), and the [`Metrics`] handle the server and its workers
//! increment.
//!
//! Two kinds of series: those the process counts as things happen (HTTP request durations,
//! webhook events by source and outcome), kept in [`Metrics`]; and those that describe the
//! store's state (queue depth, failures, open cases, findings, exceptions, revocation debt,
//! coverage, time-to-revoke), computed from the store at each scrape so every process sharing a
//! store reports the same values. The text format is written by hand: it is a few lines of
//! `name{label="value"} number`, and [`Text`] escapes label values as the format requires.

use crate::ServerState;
use crate::access::{Need, need};
use crate::error::ApiError;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

/// Upper bounds (seconds) of the HTTP request duration histogram's buckets.
pub const HTTP_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The counters the process keeps. Clone it freely (one `Arc`).
#[derive(Clone, Default)]
pub struct Metrics {
    inner: Arc<Mutex<Counters>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics(..)")
    }
}

#[derive(Default)]
struct Counters {
    /// (source, outcome) -> count.
    webhook: BTreeMap<(String, String), u64>,
    /// (method, route, status) -> histogram.
    http: BTreeMap<(String, String, u16), Histogram>,
}

#[derive(Default, Clone)]
struct Histogram {
    /// Cumulative counts per bucket of [`HTTP_BUCKETS`].
    buckets: Vec<u64>,
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, v: f64) {
        if self.buckets.len() != HTTP_BUCKETS.len() {
            self.buckets = vec![0; HTTP_BUCKETS.len()];
        }
        for (b, le) in self.buckets.iter_mut().zip(HTTP_BUCKETS) {
            if v <= *le {
                *b += 1;
            }
        }
        self.count += 1;
        self.sum += v;
    }
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts one webhook (or SCIM) push for `source` that ended as `outcome` (`accepted`,
    /// `duplicate`, `unauthorized`, `invalid`, `too_large`, `held`, ...).
    pub fn webhook_event(&self, source: &str, outcome: &str) {
        *self.lock().webhook.entry((source.to_string(), outcome.to_string())).or_default() += 1;
    }

    /// Records one HTTP request's duration. `route` is the matched route template
    /// (`/api/v1/identities/{id}`), never the raw path, so the series stay few.
    pub fn http_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.lock().http.entry((method.to_string(), route.to_string(), status)).or_default().observe(seconds);
    }

    /// The process's own series in the text format.
    pub fn render(&self, out: &mut Text) {
        let c = self.lock();
        out.family("tenure_webhook_events_total", "counter", "Webhook and SCIM pushes by source and outcome.");
        for ((source, outcome), n) in &c.webhook {
            out.sample("tenure_webhook_events_total", &[("source", source), ("outcome", outcome)], *n as f64);
        }
        out.family("tenure_http_request_duration_seconds", "histogram", "HTTP request duration by route.");
        for ((method, route, status), h) in &c.http {
            let status = status.to_string();
            let labels = [("method", method.as_str()), ("route", route.as_str()), ("status", status.as_str())];
            for (le, n) in HTTP_BUCKETS.iter().zip(&h.buckets) {
                let le = le.to_string();
                let mut l = labels.to_vec();
                l.push(("le", &le));
                out.sample("tenure_http_request_duration_seconds_bucket", &l, *n as f64);
            }
            let mut l = labels.to_vec();
            l.push(("le", "+Inf"));
            out.sample("tenure_http_request_duration_seconds_bucket", &l, h.count as f64);
            out.sample("tenure_http_request_duration_seconds_sum", &labels, h.sum);
            out.sample("tenure_http_request_duration_seconds_count", &labels, h.count as f64);
        }
    }
}

/// A Prometheus text exposition being written.
#[derive(Debug, Default)]
pub struct Text {
    out: String,
}

impl Text {
    /// `# HELP` and `# TYPE` lines for a metric family.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {}", help.replace('\\', "\\\\").replace('\n', "\\n"));
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    /// One sample line; label values are escaped (backslash, double quote, newline).
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let v = v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
                let _ = write!(self.out, "{k}=\"{v}\"");
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", number(value));
    }

    pub fn finish(self) -> String {
        self.out
    }
}

fn number(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else if v.is_nan() {
        "NaN".into()
    } else {
        v.to_string()
    }
}

pub fn router() -> Router<ServerState> {
    Router::new().route("/metrics", get(scrape)).route_layer(axum::middleware::from_fn(need(Need::Read)))
}

async fn scrape(State(state): State<ServerState>) -> Result<impl IntoResponse, ApiError> {
    let mut text = Text::default();
    state.metrics.render(&mut text);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_format_escapes_labels_and_accumulates_buckets() {
        let m = Metrics::default();
        m.webhook_event("h\"r\\\n", "accepted");
        m.http_request("GET", "/api/v1/identities", 200, 0.003);
        m.http_request("GET", "/api/v1/identities", 200, 0.2);
        let mut t = Text::default();
        m.render(&mut t);
        let text = t.finish();
        assert!(text.contains(r#"tenure_webhook_events_total{source="h\"r\\\n",outcome="accepted"} 1"#), "{text}");
        let route = r#"method="GET",route="/api/v1/identities",status="200""#;
        assert!(text.contains(&format!("tenure_http_request_duration_seconds_bucket{{{route},le=\"0.001\"}} 0")));
        assert!(text.contains(&format!("tenure_http_request_duration_seconds_bucket{{{route},le=\"0.005\"}} 1")));
        assert!(text.contains(&format!("tenure_http_request_duration_seconds_bucket{{{route},le=\"0.25\"}} 2")));
        assert!(text.contains(&format!("tenure_http_request_duration_seconds_bucket{{{route},le=\"+Inf\"}} 2")));
        assert!(text.contains(&format!("tenure_http_request_duration_seconds_count{{{route}}} 2")));
    }
}
