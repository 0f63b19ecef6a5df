//! The digest-keyed cache of fetched artifacts, beside the compiled
//! components' cache: a layer's bytes under their own digest, and per
//! manifest digest a record naming its layer. A manifest digest (what a
//! reference's `@sha256:` and a lock file pin) thus finds its bytes without
//! the network, and the bytes are checked against their digest on every
//! read.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::reference::sha256;
use crate::{Kind, RegistryError};

/// `<root>/blobs/sha256/<hex>.<ext>` and `<root>/manifests/sha256/<hex>.json`.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    root: PathBuf,
}

/// What a manifest digest resolved to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    /// The layer chosen: `sha256:<hex>`.
    pub layer: String,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
}

impl Store {
    pub(crate) fn new(root: PathBuf) -> Store {
        Store { root }
    }

    fn hex(digest: &str) -> &str {
        digest.strip_prefix("sha256:").unwrap_or(digest)
    }

    fn record_path(&self, manifest: &str) -> PathBuf {
        self.root
            .join("manifests/sha256")
            .join(format!("{}.json", Self::hex(manifest)))
    }

    fn blob_path(&self, layer: &str, kind: Kind) -> PathBuf {
        self.root
            .join("blobs/sha256")
            .join(format!("{}.{}", Self::hex(layer), kind.extension()))
    }

    /// The cached bytes of the artifact with manifest digest `manifest`, if
    /// they are all there and still have their digest.
    pub(crate) fn get(
        &self,
        manifest: &str,
        kind: Kind,
        reference: &str,
    ) -> Result<Option<PathBuf>, RegistryError> {
        let Ok(text) = std::fs::read(self.record_path(manifest)) else {
            return Ok(None);
        };
        let Ok(record) = serde_json::from_slice::<Record>(&text) else {
            return Ok(None);
        };
        let blob = self.blob_path(&record.layer, kind);
        let bytes = match std::fs::read(&blob) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(RegistryError::io(blob, e)),
        };
        let actual = sha256(&bytes);
        if actual != record.layer {
            return Err(RegistryError::DigestMismatch {
                reference: reference.to_string(),
                what: "the cached copy",
                expected: record.layer,
                actual,
            });
        }
        Ok(Some(blob))
    }

    /// Stores `bytes` (already checked against `record.layer`) as the
    /// artifact of manifest `manifest`; returns the file.
    pub(crate) fn put(
        &self,
        manifest: &str,
        kind: Kind,
        record: &Record,
        bytes: &[u8],
    ) -> Result<PathBuf, RegistryError> {
        let blob = self.blob_path(&record.layer, kind);
        write_atomically(&blob, bytes)?;
        let text = serde_json::to_vec_pretty(record).expect("a record serializes");
        write_atomically(&self.record_path(manifest), &text)?;
        Ok(blob)
    }
}

/// Writes `path` so no reader ever sees a part of it (other processes may
/// share the cache).
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), RegistryError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| RegistryError::io(dir, e))?;
    // Unique per writer: other processes and other threads may be writing
    // the same file at once.
    static WRITERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id(),
        WRITERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let written = std::fs::write(&tmp, bytes)
        .map_err(|e| RegistryError::io(&tmp, e))
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| RegistryError::io(path, e)));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_what_it_stored_and_refuses_a_changed_copy() {
        let root = std::env::temp_dir().join(format!("registry-store-{}", std::process::id()));
        let store = Store::new(root.clone());
        let bytes = b"\0asm\x0d\0\x01\0";
        let record = Record {
            layer: sha256(bytes),
            media_type: "application/wasm".into(),
            size: bytes.len() as u64,
        };
        let manifest = sha256(b"manifest");
        assert!(
            store
                .get(&manifest, Kind::Component, "r")
                .unwrap()
                .is_none()
        );
        let path = store
            .put(&manifest, Kind::Component, &record, bytes)
            .unwrap();
        assert_eq!(
            store.get(&manifest, Kind::Component, "r").unwrap(),
            Some(path.clone())
        );
        std::fs::write(&path, b"\0asm changed").unwrap();
        assert!(matches!(
            store.get(&manifest, Kind::Component, "r"),
            Err(RegistryError::DigestMismatch {
                what: "the cached copy",
                ..
            })
        ));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
