//! One module per command or command group. Each is a short function over the state `main`
//! opened for it: call the library, print the result, choose the exit status. None computes a
//! report, reaches the store other than through the engine, or imports another command's module;
//! what they share is in `output` and `support`.

pub mod apply;
pub mod approvals;
pub mod audit;
pub mod campaigns;
pub mod cases;
pub mod check;
pub mod correlations;
#[cfg(feature = "demo")]
pub mod demo;
pub mod exceptions;
pub mod explain;
pub mod identity;
pub mod import;
pub mod init;
pub mod plan;
pub mod reconcile;
pub mod requests;
pub mod rotate;
pub mod schedule;
pub mod serve;
pub mod simulate;
pub mod tasks;
pub mod token;
