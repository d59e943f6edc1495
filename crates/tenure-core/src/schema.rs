//! The attribute schema: which attributes an identity can have and their types.
//!
//! Identities store attribute values in slots indexed by this schema instead of string-keyed
//! maps. That keeps 100,000 identities small in memory and lets the compiled policy evaluator
//! address attributes by index.

use std::collections::HashMap;

/// The index of an attribute in a [`Schema`].
pub type Slot = usize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AttrType {
    String,
    Date,
}

/// Attributes every identity may have. `status` and `kind` are derived by Tenure (the lifecycle
/// status and the identity kind), everything else comes from a source.
pub const BUILTIN: &[(&str, AttrType)] = &[
    ("status", AttrType::String),
    ("kind", AttrType::String),
    ("email", AttrType::String),
    ("username", AttrType::String),
    ("given_name", AttrType::String),
    ("family_name", AttrType::String),
    ("department", AttrType::String),
    ("title", AttrType::String),
    ("location", AttrType::String),
    ("cost_center", AttrType::String),
    ("manager_id", AttrType::String),
    ("employment_type", AttrType::String),
    ("start_date", AttrType::Date),
    ("end_date", AttrType::Date),
    ("owner_id", AttrType::String),
    // Non-human identities: what it is for, when its credential was last rotated
    // (as a source says; Tenure's own verified rotations count too), and how old it may get.
    ("purpose", AttrType::String),
    ("credential_rotated", AttrType::Date),
    ("credential_max_age", AttrType::String),
];

pub const STATUS: Slot = 0;
pub const KIND: Slot = 1;

#[derive(Debug, Clone)]
pub struct Schema {
    names: Vec<String>,
    types: Vec<AttrType>,
    index: HashMap<String, Slot>,
}

impl Default for Schema {
    fn default() -> Self {
        let mut s = Self { names: Vec::new(), types: Vec::new(), index: HashMap::new() };
        for (name, ty) in BUILTIN {
            s.push(name, *ty);
        }
        s
    }
}

impl Schema {
    /// Adds a declared attribute. Returns `false` if the name is already taken.
    pub fn declare(&mut self, name: &str, ty: AttrType) -> bool {
        if self.index.contains_key(name) {
            return false;
        }
        self.push(name, ty);
        true
    }

    fn push(&mut self, name: &str, ty: AttrType) {
        self.index.insert(name.to_string(), self.names.len());
        self.names.push(name.to_string());
        self.types.push(ty);
    }

    pub fn slot(&self, name: &str) -> Option<Slot> {
        self.index.get(name).copied()
    }

    pub fn name(&self, slot: Slot) -> &str {
        self.names.get(slot).map_or("?", String::as_str)
    }

    pub fn ty(&self, slot: Slot) -> AttrType {
        self.types.get(slot).copied().unwrap_or(AttrType::String)
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    pub fn well_known(&self) -> usize {
        BUILTIN.len()
    }

    pub fn slot_of(&self, name: &str) -> Slot {
        self.slot(name).unwrap_or(usize::MAX)
    }
}
