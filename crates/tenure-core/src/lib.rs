//! The Tenure domain: identities, lifecycle events, configuration, snapshot diffing, planning
//! and the audit record format.
//!
//! This crate does no IO and holds no async runtime. Everything here is a pure function of its
//! inputs (the current date is always passed in), so the lifecycle rules can be tested
//! exhaustively with data and reused unchanged by the CLI, the server and the benchmarks.

pub mod attributes;
pub mod audit;
pub mod clock;
pub mod config;
pub mod date;
pub mod diag;
pub mod doc;
pub mod error;
pub mod evidence;
pub mod model;
pub mod plan;
pub mod record;
pub mod rules;
pub mod schema;
pub mod snapshot;
pub mod spreadsheet;
pub mod template;
pub mod text;

pub use diag::{Problem, Problems};
pub use model::*;
pub use schema::{AttrType, Schema, Slot};
