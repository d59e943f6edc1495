//! Tests of the ldap connector against a real peer.
