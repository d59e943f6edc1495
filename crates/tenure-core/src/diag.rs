//! Problems found while loading user-written files, each with file, line and reason.

use std::fmt;

/// One problem in a user-written file. `line` is 1-based; 0 means "the whole file".
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        }
    }
}

/// A collector of problems for one file. It turns byte offsets into line numbers.
#[derive(Debug)]
pub struct Problems<'s> {
    file: String,
    source: &'s str,
    items: Vec<Problem>,
}

impl<'s> Problems<'s> {
    pub fn new(file: impl Into<String>, source: &'s str) -> Self {
        Self { file: file.into(), source, items: Vec::new() }
    }

    /// Records a problem at the byte `offset` of the source.
    pub fn at(&mut self, offset: usize, message: impl Into<String>) {
        let line = line_of(self.source, offset);
        self.items.push(Problem { file: self.file.clone(), line, message: message.into() });
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn into_vec(mut self) -> Vec<Problem> {
        self.items.sort_by_key(|p| p.line);
        self.items
    }
}

/// The 1-based line of a byte offset.
pub fn line_of(source: &str, offset: usize) -> usize {
    let end = offset.min(source.len());
    source.as_bytes().get(..end).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count()) + 1
}
