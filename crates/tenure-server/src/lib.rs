//! `tenure serve`: the always-on control plane.
//!
//! One process serves the REST API, the signed HR webhooks, the SCIM endpoint and the metrics,
//! and runs the workers and schedules (the design's sections 10–12). This crate owns the HTTP edge: it turns
//! requests into calls on the engine's application state and engine results into JSON, and it
//! is the one place that maps error codes to HTTP statuses. The pure parts come first:
//! [`auth`] (tokens, scopes, the throttle) and [`webhook`] (Standard Webhooks signatures).

pub mod auth;
pub mod webhook;
