//! A component of the composition found and read: a flow's node component,
//! or the bot's provider.

use std::path::{Path, PathBuf};

use super::options::ComposeError;
use crate::policy::Manifest;
use crate::source::{ComponentRef, ComponentResolver};

/// A component's file, bytes and manifest (if it has one beside it).
pub(super) struct ReadComponent {
    pub(super) path: PathBuf,
    pub(super) bytes: Vec<u8>,
    pub(super) manifest: Option<Manifest>,
}

impl ReadComponent {
    /// Resolves `component` as `flow_file` names it and reads it.
    pub(super) fn read(
        resolver: &ComponentResolver,
        flow_file: &Path,
        component: ComponentRef<'_>,
    ) -> Result<ReadComponent, ComposeError> {
        let reference = component.reference;
        let path = resolver.resolve(flow_file, component)?.path;
        let bytes = std::fs::read(&path).map_err(|source| ComposeError::Read {
            path: path.clone(),
            source,
        })?;
        let manifest = Manifest::find(&path).map_err(|source| ComposeError::Manifest {
            reference: reference.to_string(),
            source,
        })?;
        Ok(ReadComponent {
            path,
            bytes,
            manifest,
        })
    }
}
