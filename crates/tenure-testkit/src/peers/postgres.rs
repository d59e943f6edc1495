//! Placeholder: the postgres peer is being written.
pub struct Postgres;
