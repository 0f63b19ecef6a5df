//! The one error of opening a pack: which pack (and entry), and what is wrong.

use std::path::Path;

/// A pack could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("{pack}: {message}")]
pub struct PackError {
    /// The pack (directory or archive, with the entry inside it when known).
    pub pack: String,
    /// What is wrong.
    pub message: String,
}

pub(super) fn err(pack: &Path, message: impl Into<String>) -> PackError {
    PackError {
        pack: pack.display().to_string(),
        message: message.into(),
    }
}
