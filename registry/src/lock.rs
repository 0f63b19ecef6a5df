//! The lock file: each registry reference pinned to the manifest digest it
//! had when `host-shim pull` ran, so later runs fetch exactly that (or
//! nothing, offline). The shape is greentic-pack's `pack.lock.json`
//! (`schema_version` 1, `components: [{name, ref, digest}]`) with packs in
//! a `packs` list beside it, so a lock written by packc is read here too.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::RegistryError;
use crate::reference::is_sha256;

/// The lock file's one schema version.
const SCHEMA_VERSION: u32 = 1;

/// References pinned to digests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lock {
    components: BTreeMap<String, Pin>,
    packs: BTreeMap<String, Pin>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pin {
    name: String,
    digest: String,
}

#[derive(Serialize, Deserialize)]
struct LockFile {
    schema_version: u32,
    #[serde(default)]
    components: Vec<Entry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    packs: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    name: String,
    #[serde(rename = "ref")]
    reference: String,
    digest: String,
}

impl Lock {
    /// Reads `path`.
    pub fn read(path: &Path) -> Result<Lock, RegistryError> {
        let text = std::fs::read_to_string(path).map_err(|e| RegistryError::io(path, e))?;
        let bad = |detail: String| RegistryError::BadLock {
            path: path.to_path_buf(),
            detail,
        };
        let file: LockFile = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if file.schema_version != SCHEMA_VERSION {
            return Err(bad(format!(
                "schema_version {} (this runner reads {SCHEMA_VERSION})",
                file.schema_version
            )));
        }
        let mut lock = Lock::default();
        for (entries, into) in [
            (file.components, &mut lock.components),
            (file.packs, &mut lock.packs),
        ] {
            for e in entries {
                if !is_sha256(&e.digest) {
                    return Err(bad(format!(
                        "`{}`: digest `{}` is not sha256:<64 hex digits>",
                        e.reference, e.digest
                    )));
                }
                into.insert(
                    e.reference,
                    Pin {
                        name: e.name,
                        digest: e.digest,
                    },
                );
            }
        }
        Ok(lock)
    }

    /// Writes it to `path` (sorted by reference: a diff shows what moved).
    pub fn write(&self, path: &Path) -> Result<(), RegistryError> {
        let entries = |map: &BTreeMap<String, Pin>| {
            map.iter()
                .map(|(reference, pin)| Entry {
                    name: pin.name.clone(),
                    reference: reference.clone(),
                    digest: pin.digest.clone(),
                })
                .collect()
        };
        let file = LockFile {
            schema_version: SCHEMA_VERSION,
            components: entries(&self.components),
            packs: entries(&self.packs),
        };
        let mut text = serde_json::to_vec_pretty(&file).expect("a lock serializes");
        text.push(b'\n');
        crate::store::write_atomically(path, &text)
    }

    /// The digest `reference` is pinned to.
    pub fn digest(&self, reference: &str) -> Option<&str> {
        self.components
            .get(reference)
            .or_else(|| self.packs.get(reference))
            .map(|p| p.digest.as_str())
    }

    /// Pins `reference` (a component or a pack) to `digest`.
    pub fn pin(&mut self, kind: crate::Kind, reference: &str, name: &str, digest: &str) {
        let map = match kind {
            crate::Kind::Component => &mut self.components,
            crate::Kind::Pack => &mut self.packs,
        };
        map.insert(
            reference.to_string(),
            Pin {
                name: name.to_string(),
                digest: digest.to_string(),
            },
        );
    }

    /// Every pinned reference, with what it is.
    pub fn entries(&self) -> impl Iterator<Item = (crate::Kind, &str)> {
        self.components
            .keys()
            .map(|r| (crate::Kind::Component, r.as_str()))
            .chain(self.packs.keys().map(|r| (crate::Kind::Pack, r.as_str())))
    }

    /// How many references it pins.
    pub fn len(&self) -> usize {
        self.components.len() + self.packs.len()
    }

    /// Whether it pins nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_packc_locks_and_round_trips_its_own() {
        let dir = std::env::temp_dir().join(format!("registry-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let d = format!("sha256:{}", "b".repeat(64));
        // As packc writes it.
        let packc = dir.join("pack.lock.json");
        std::fs::write(
            &packc,
            format!(
                r#"{{"schema_version":1,"components":[{{"name":"templates","ref":"oci://ghcr.io/g/templates:stable","digest":"{d}"}}]}}"#
            ),
        )
        .unwrap();
        let mut lock = Lock::read(&packc).unwrap();
        assert_eq!(
            lock.digest("oci://ghcr.io/g/templates:stable"),
            Some(d.as_str())
        );
        lock.pin(crate::Kind::Pack, "oci://ghcr.io/g/p:1", "p", &d);
        let ours = dir.join("ours.lock.json");
        lock.write(&ours).unwrap();
        assert_eq!(Lock::read(&ours).unwrap(), lock);
        std::fs::write(&packc, r#"{"schema_version":1,"components":[{"name":"x","ref":"oci://a.b/x:1","digest":"md5:1"}]}"#).unwrap();
        let err = Lock::read(&packc).unwrap_err().to_string();
        assert!(
            err.contains("oci://a.b/x:1") && err.contains("md5:1"),
            "{err}"
        );
        std::fs::write(&packc, r#"{"schema_version":2}"#).unwrap();
        assert!(
            Lock::read(&packc)
                .unwrap_err()
                .to_string()
                .contains("schema_version 2")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
