//! Tests of the postgres connector against a real peer.
