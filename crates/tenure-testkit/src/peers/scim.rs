//! Placeholder: the scim peer is being written.
pub struct Scim;
