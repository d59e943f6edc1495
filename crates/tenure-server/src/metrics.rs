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

/// Upper bounds (seconds) of the time-to-revoke histogram's buckets.
pub const REVOKE_BUCKETS: &[f64] = &[0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 86400.0];

/// Exception age bands, in days: (label, upper bound).
const AGE_BANDS: &[(&str, i64)] = &[("lt_1d", 1), ("1d_7d", 7), ("7d_30d", 30), ("gt_30d", i64::MAX)];

/// The series that describe the store's state, read on the blocking pool at each scrape.
fn store_series(app: &tenure_engine::app::App, out: &mut Text) -> Result<(), ApiError> {
    use tenure_core::OpState;
    let store = app.store().as_ref();
    let config = app.config();
    let class_of = |target: &str| config.target(target).map_or_else(|| "unknown".to_string(), |t| t.class.to_string());

    let counts = store.operation_counts(false)?;
    out.family("tenure_queue_depth", "gauge", "Operations by target and state.");
    for c in &counts {
        out.sample("tenure_queue_depth", &[("target", &c.target), ("state", c.state.as_str())], c.count as f64);
    }
    out.family("tenure_operation_failures", "gauge", "Operations failed past their retries, by target.");
    let mut failures: BTreeMap<&str, i64> = config.targets.iter().map(|t| (t.name.as_str(), 0)).collect();
    for c in counts.iter().filter(|c| c.state == OpState::Failed) {
        *failures.entry(c.target.as_str()).or_default() += c.count;
    }
    for (t, n) in &failures {
        out.sample("tenure_operation_failures", &[("target", t)], *n as f64);
    }

    // Leaver revocations per class: debt (not verified nor excepted, cancelled work aside) and
    // coverage; overdue manual tickets are debt too.
    let mut by_class: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for c in store.operation_counts(true)? {
        let row = by_class.entry(class_of(&c.target)).or_default();
        match c.state {
            OpState::Cancelled => {}
            OpState::Verified | OpState::Excepted => {
                row.0 += c.count;
                row.1 += c.count;
            }
            _ => row.0 += c.count,
        }
    }
    let mut debt: BTreeMap<String, i64> = by_class.iter().map(|(k, (all, done))| (k.clone(), all - done)).collect();
    for t in store.tickets(true)?.iter().filter(|t| t.overdue) {
        *debt.entry(class_of(&t.target)).or_default() += 1;
    }
    out.family("tenure_revocation_debt", "gauge", "Unverified leaver revocations plus overdue tickets, by class.");
    for (class, n) in &debt {
        out.sample("tenure_revocation_debt", &[("class", class)], *n as f64);
    }
    out.family(
        "tenure_revocation_coverage_ratio",
        "gauge",
        "Verified or excepted leaver revocations over all, by class.",
    );
    for (class, (all, done)) in &by_class {
        let ratio = if *all > 0 { *done as f64 / *all as f64 } else { 1.0 };
        out.sample("tenure_revocation_coverage_ratio", &[("class", class)], ratio);
    }

    let mut open: BTreeMap<&str, i64> = tenure_core::EventKind::ALL.iter().map(|k| (k.as_str(), 0)).collect();
    for c in store.cases(true)? {
        *open.entry(c.kind.as_str()).or_default() += 1;
    }
    out.family("tenure_open_cases", "gauge", "Lifecycle cases not closed, by kind.");
    for (k, n) in &open {
        out.sample("tenure_open_cases", &[("kind", k)], *n as f64);
    }

    let mut findings: BTreeMap<&str, i64> = tenure_core::FindingKind::ALL.iter().map(|k| (k.as_str(), 0)).collect();
    for f in store.latest_findings()? {
        *findings.entry(f.kind.as_str()).or_default() += 1;
    }
    out.family("tenure_findings", "gauge", "Findings of each target's latest reconciliation, by kind.");
    for (k, n) in &findings {
        out.sample("tenure_findings", &[("kind", k)], *n as f64);
    }

    let now = app.clock().now();
    let mut exceptions: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for e in store.exceptions(true)? {
        let days = chrono::DateTime::parse_from_rfc3339(&e.created_at).map_or(0, |t| (now - t.to_utc()).num_days());
        let band = AGE_BANDS.iter().find(|(_, upper)| days < *upper).map_or("gt_30d", |(l, _)| l);
        *exceptions.entry((e.kind.as_str(), band)).or_default() += 1;
    }
    out.family("tenure_exceptions_open", "gauge", "Open exceptions (control debt) by kind and age.");
    for ((kind, age), n) in &exceptions {
        out.sample("tenure_exceptions_open", &[("kind", kind), ("age", age)], *n as f64);
    }
    // Issue 10 (nhi): per kind, every kind present (0 when none), the oldest open one's age and
    // how many are accepted (debt taken on knowingly).
    let mut oldest: BTreeMap<&str, f64> = tenure_core::ExceptionKind::ALL.iter().map(|k| (k.as_str(), 0.0)).collect();
    let mut accepted: BTreeMap<&str, i64> = tenure_core::ExceptionKind::ALL.iter().map(|k| (k.as_str(), 0)).collect();
    for c in store.exception_counts()? {
        match c.state {
            tenure_core::ExceptionState::Open => {
                let age = chrono::DateTime::parse_from_rfc3339(&c.oldest)
                    .map_or(0, |t| (now - t.to_utc()).num_seconds().max(0));
                oldest.insert(c.kind.as_str(), age as f64);
            }
            tenure_core::ExceptionState::Accepted => {
                accepted.insert(c.kind.as_str(), c.count);
            }
            tenure_core::ExceptionState::Resolved => {}
        }
    }
    out.family(
        "tenure_exceptions_open_oldest_age_seconds",
        "gauge",
        "Age of the oldest open exception of each kind (0 when none is open).",
    );
    for (kind, age) in &oldest {
        out.sample("tenure_exceptions_open_oldest_age_seconds", &[("kind", kind)], *age);
    }
    out.family("tenure_exceptions_accepted", "gauge", "Accepted exceptions (risk taken knowingly) by kind.");
    for (kind, n) in &accepted {
        out.sample("tenure_exceptions_accepted", &[("kind", kind)], *n as f64);
    }

    let times = store.revoke_times()?;
    out.family("tenure_time_to_revoke_seconds", "histogram", "Leaver event to every operation verified.");
    let mut sum = 0.0;
    for le in REVOKE_BUCKETS {
        let n = times.iter().filter(|ms| (**ms as f64) / 1000.0 <= *le).count();
        out.sample("tenure_time_to_revoke_seconds_bucket", &[("le", &le.to_string())], n as f64);
    }
    for ms in &times {
        sum += *ms as f64 / 1000.0;
    }
    out.sample("tenure_time_to_revoke_seconds_bucket", &[("le", "+Inf")], times.len() as f64);
    out.sample("tenure_time_to_revoke_seconds_sum", &[], sum);
    out.sample("tenure_time_to_revoke_seconds_count", &[], times.len() as f64);
    Ok(())
}

async fn scrape(State(state): State<ServerState>) -> Result<impl IntoResponse, ApiError> {
    let mut text = tenure_engine::blocking::app(&state.app, |app| {
        let mut text = Text::default();
        store_series(app, &mut text)?;
        Ok::<_, ApiError>(text)
    })
    .await?;
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
