//! Connector tests against real peers started by the testkit: OpenLDAP, scim2-server and a
//! throwaway PostgreSQL cluster. One test binary (see ARCHITECTURE.md); one module per connector.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code")]

mod issue15;
mod ldap;
mod postgres;
mod profiles;
mod scim;
mod tls;
