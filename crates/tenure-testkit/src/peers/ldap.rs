//! Placeholder: the ldap peer is being written.
pub struct Ldap;
