//! Sample data: synthetic companies and the starter config and policy.
//!
//! Kept apart from the test kit so that the production binary can write `tenure init`'s files
//! without linking the peer installers, and so that `init`, the demo, the tests and the
//! benchmarks all start from one text.

pub mod company;
pub mod starter;
