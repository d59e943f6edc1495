//! What pushes need from the store: the journal that makes a signed webhook durable before it is
//! acknowledged, and the lookups that let one pushed record be checked without reading every
//! identity (who holds a username, which non-human identities a leaver owns, what the source's
//! recent batches did for the guard's window).

use crate::Result;
use serde::Serialize;
use tenure_core::{Identity, Schema};

/// A delivery to journal: one signed webhook (or one events-API call) of one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalIn {
    pub source: String,
    /// The sender's delivery id (`webhook-id`); unique per source.
    pub delivery: String,
    pub actor: String,
    /// The checked records, as JSON (an array).
    pub records: serde_json::Value,
    /// What the acknowledgement says, returned again for a repeated delivery.
    pub response: serde_json::Value,
}

/// What journaling one delivery did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Journaled {
    /// Written now, under this journal id.
    New(i64),
    /// The source had this delivery id already: the first response, nothing written.
    Repeat { id: i64, response: serde_json::Value },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalState {
    Pending,
    Ingested,
}

/// A journaled delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JournalEntry {
    pub id: i64,
    pub source: String,
    pub delivery: String,
    pub actor: String,
    pub received_at: String,
    pub records: serde_json::Value,
    pub response: serde_json::Value,
    pub state: JournalState,
    pub import_id: Option<i64>,
    pub result: Option<serde_json::Value>,
}

/// Journal entries a batch ingests: marked `ingested` in the batch's own transaction, so an
/// entry is ingested exactly once (the commit fails with `Conflict` if one was already).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ingested {
    pub entries: Vec<i64>,
    /// Per-entry outcome (records applied, rejected and why), stored beside each entry.
    pub results: Vec<serde_json::Value>,
}

/// One of a source's recent batches, for the guard's sliding window over pushes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecentBatch {
    pub import_id: i64,
    pub at: String,
    /// `applied`, `held`, `approved`, ...
    pub state: String,
    pub summary: serde_json::Value,
}

/// The push side of a store.
pub trait Pushes: Send + Sync {
    /// Appends deliveries in one transaction (one fsync for many concurrent webhooks), each
    /// either new or a repeat of a delivery id its source already sent.
    fn journal_append(&self, entries: &[JournalIn]) -> Result<Vec<Journaled>>;
    /// Pending entries, oldest first.
    fn journal_pending(&self, limit: usize) -> Result<Vec<JournalEntry>>;
    fn journal_entry(&self, id: i64) -> Result<Option<JournalEntry>>;
    /// Marks entries ingested without a batch (every record in them was refused or changed
    /// nothing), with their results; entries no longer pending are left alone.
    fn journal_settle(&self, done: &Ingested) -> Result<usize>;
    /// Deletes up to `limit` ingested entries received before `before` (a stored timestamp),
    /// oldest first; pending entries are never deleted. Returns how many went.
    fn journal_prune(&self, before: &str, limit: usize) -> Result<usize>;
    /// Identities (any source) whose username may fold to one of `usernames` (already folded):
    /// `(id, username)`. The caller compares exactly; this may return more.
    fn username_holders(&self, usernames: &[String]) -> Result<Vec<(String, String)>>;
    /// Identities whose `owner_id` is one of `owners`.
    fn owned_by(&self, schema: &Schema, owners: &[&str]) -> Result<Vec<Identity>>;
    /// The source of each of `ids` that exists: `(id, source)`.
    fn sources_of(&self, ids: &[&str]) -> Result<Vec<(String, String)>>;
    /// How many of the source's identities are not terminated (the guard's population).
    fn active_count(&self, source: &str) -> Result<usize>;
    /// The source's batches committed at or after `since` (a stored timestamp).
    fn batches_since(&self, source: &str, since: &str) -> Result<Vec<RecentBatch>>;
}
