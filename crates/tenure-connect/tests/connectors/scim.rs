//! Tests of the scim connector against a real peer.
