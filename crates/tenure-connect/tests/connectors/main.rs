//! Connector tests against real peers started by the testkit: OpenLDAP, scim2-server and a
//! throwaway PostgreSQL cluster. One test binary (see ARCHITECTURE.md); one module per connector.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code")]

mod issue15;
mod ldap;
mod postgres;
mod profiles;
mod scim;
mod tls;

use tenure_connect::{AccountSpec, Request};
use tenure_core::OpKind;

/// A request of `kind` for `account`, with `entitlement` for a grant or revoke: what the
/// executor hands a connector.
fn req(kind: OpKind, account: &AccountSpec, entitlement: Option<&str>) -> Request {
    Request {
        kind,
        entitlement: entitlement.map(str::to_string),
        account: account.clone(),
        new_owner: None,
        secret: None,
    }
}
