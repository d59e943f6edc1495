//! Synthetic companies (being written).
