//! Capability gating: which node components may use the state store.
//!
//! A component gets `greentic:state/state-store` only when (a) its manifest
//! declares `capabilities.host.state` and (b) the selected profile allows it.
//! The operations it gets are those both grant. Anything else — no manifest, a
//! manifest without `host.state`, a profile that does not list it — means no
//! state (fail closed).

use std::path::{Path, PathBuf};

use serde_json::Value;

/// A manifest or profile that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(String);

macro_rules! bail {
    ($($arg:tt)*) => { return Err(PolicyError(format!($($arg)*))) };
}

/// State operations a component may perform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Grant {
    /// `read`
    pub read: bool,
    /// `write` and `write-if-absent`
    pub write: bool,
    /// `delete`
    pub delete: bool,
}

impl Grant {
    /// Every operation.
    pub const ALL: Grant = Grant {
        read: true,
        write: true,
        delete: true,
    };

    /// Operations granted by both.
    pub fn intersect(self, other: Grant) -> Grant {
        Grant {
            read: self.read && other.read,
            write: self.write && other.write,
            delete: self.delete && other.delete,
        }
    }

    /// No operation at all.
    pub fn is_empty(self) -> bool {
        !(self.read || self.write || self.delete)
    }
}

/// The parts of a `component.manifest.json` the host reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The file it came from.
    pub path: PathBuf,
    /// Component id (`[A-Za-z0-9._-]+`); names the component's state namespace.
    pub id: String,
    /// `capabilities.host.state`, if declared.
    pub state: Option<Grant>,
    /// `limits`, as declared.
    pub limits: Limits,
}

/// A manifest's `limits`: `{"memory_mb", "wall_time_ms", "fuel"}`, each optional.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    /// Linear memory cap, MiB.
    pub memory_mb: Option<u64>,
    /// Wall-clock budget per invocation, ms.
    pub wall_time_ms: Option<u64>,
    /// Fuel per invocation.
    pub fuel: Option<u64>,
}

impl Manifest {
    /// The manifest of the component at `wasm`: `<name>.manifest.json` next to
    /// `<name>.wasm`, else `component.manifest.json` in the same directory
    /// (greentic's one-component-per-directory layout). `None` if neither exists.
    pub fn find(wasm: &Path) -> Result<Option<Manifest>, PolicyError> {
        let dir = wasm.parent().unwrap_or(Path::new("."));
        let stem = wasm
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        for candidate in [
            dir.join(format!("{stem}.manifest.json")),
            dir.join("component.manifest.json"),
        ] {
            if candidate.is_file() {
                return Manifest::read(&candidate).map(Some);
            }
        }
        Ok(None)
    }

    /// Reads and checks a manifest file.
    pub fn read(path: &Path) -> Result<Manifest, PolicyError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| PolicyError(format!("cannot read `{}`: {e}", path.display())))?;
        let doc: Value = serde_json::from_str(&text)
            .map_err(|e| PolicyError(format!("`{}` is not valid JSON: {e}", path.display())))?;
        let Some(id) = doc
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| valid_id(id))
        else {
            bail!(
                "`{}`: `id` must be a string of letters, digits, `.`, `_`, `-`",
                path.display()
            );
        };
        let id = id.to_string();
        let state = match doc.pointer("/capabilities/host/state") {
            None | Some(Value::Null) => None,
            Some(Value::Object(ops)) => {
                let flag = |name: &str| -> Result<bool, PolicyError> {
                    match ops.get(name) {
                        None => Ok(false),
                        Some(Value::Bool(b)) => Ok(*b),
                        Some(_) => bail!(
                            "`{}`: `capabilities.host.state.{name}` must be a bool",
                            path.display()
                        ),
                    }
                };
                Some(Grant {
                    read: flag("read")?,
                    write: flag("write")?,
                    delete: flag("delete")?,
                })
            }
            Some(_) => bail!(
                "`{}`: `capabilities.host.state` must be an object like {{\"read\": true, \"write\": true, \"delete\": true}}",
                path.display()
            ),
        };
        let limit = |name: &str| -> Result<Option<u64>, PolicyError> {
            match doc.pointer(&format!("/limits/{name}")) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => match v.as_u64() {
                    Some(n) if n > 0 => Ok(Some(n)),
                    _ => bail!(
                        "`{}`: `limits.{name}` must be a positive integer",
                        path.display()
                    ),
                },
            }
        };
        let limits = Limits {
            memory_mb: limit("memory_mb")?,
            wall_time_ms: limit("wall_time_ms")?,
            fuel: limit("fuel")?,
        };
        Ok(Manifest {
            path: path.to_path_buf(),
            id,
            state,
            limits,
        })
    }
}

/// An execution profile: what the operator allows, whatever manifests ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Name used in messages.
    pub name: String,
    /// Component ids allowed state: exact ids, `prefix.*`, or `*` for all.
    pub state_allow: Vec<String>,
    /// Operations allowed to those components.
    pub state_operations: Grant,
}

impl Profile {
    /// The default profile: every component whose manifest declares state gets
    /// what it declares.
    pub fn default_profile() -> Profile {
        Profile {
            name: "default".into(),
            state_allow: vec!["*".into()],
            state_operations: Grant::ALL,
        }
    }

    /// A profile that allows no state at all.
    pub fn no_state() -> Profile {
        Profile {
            name: "no-state".into(),
            state_allow: vec![],
            state_operations: Grant::default(),
        }
    }

    /// `default`, `no-state`, or a path to a profile file:
    /// `{"name": "...", "state": {"allow": ["counter", "ai.greentic.*"], "operations": ["read", "write", "delete"]}}`
    /// (`operations` defaults to all three).
    pub fn select(spec: &str) -> Result<Profile, PolicyError> {
        match spec {
            "default" => return Ok(Profile::default_profile()),
            "no-state" => return Ok(Profile::no_state()),
            _ => {}
        }
        let path = Path::new(spec);
        if !path.is_file() {
            bail!(
                "unknown profile `{spec}`: use `default`, `no-state` or the path of a profile file"
            );
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| PolicyError(format!("cannot read profile `{spec}`: {e}")))?;
        let doc: Value = serde_json::from_str(&text)
            .map_err(|e| PolicyError(format!("profile `{spec}` is not valid JSON: {e}")))?;
        let name = doc
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or(spec)
            .to_string();
        let state = doc.get("state").cloned().unwrap_or(Value::Null);
        let state_allow = match state.get("allow") {
            None => vec![],
            Some(Value::Array(items)) => {
                match items
                    .iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect()
                {
                    Some(ids) => ids,
                    None => {
                        bail!("profile `{spec}`: `state.allow` must be a list of component ids")
                    }
                }
            }
            Some(_) => bail!("profile `{spec}`: `state.allow` must be a list of component ids"),
        };
        let state_operations = match state.get("operations") {
            None => Grant::ALL,
            Some(Value::Array(items)) => {
                let mut grant = Grant::default();
                for item in items {
                    match item.as_str() {
                        Some("read") => grant.read = true,
                        Some("write") => grant.write = true,
                        Some("delete") => grant.delete = true,
                        _ => bail!(
                            "profile `{spec}`: `state.operations` holds `read`, `write`, `delete`; found {item}"
                        ),
                    }
                }
                grant
            }
            Some(_) => bail!("profile `{spec}`: `state.operations` must be a list"),
        };
        Ok(Profile {
            name,
            state_allow,
            state_operations,
        })
    }

    fn allows(&self, id: &str) -> bool {
        self.state_allow
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => id.starts_with(prefix),
                None => pattern == id,
            })
    }
}

/// Why a component may not use state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    /// No manifest next to the component.
    #[error(
        "it has no manifest (`<name>.manifest.json` or `component.manifest.json` next to the .wasm)"
    )]
    NoManifest,
    /// The manifest does not declare the capability.
    #[error("its manifest `{0}` does not declare `capabilities.host.state`")]
    NotDeclared(PathBuf),
    /// The manifest declares it with no operation.
    #[error("its manifest `{0}` grants no state operation")]
    NothingDeclared(PathBuf),
    /// The profile does not allow it.
    #[error("profile `{profile}` does not allow state for `{id}`")]
    Profile {
        /// Profile name.
        profile: String,
        /// Component id.
        id: String,
    },
}

/// A component approved for state: its namespace and operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// The manifest id, which names the component's state namespace.
    pub id: String,
    /// Operations it may perform.
    pub grant: Grant,
}

/// Decides whether a component with `manifest` may use state under `profile`.
pub fn approve(manifest: Option<&Manifest>, profile: &Profile) -> Result<Approval, Denial> {
    let manifest = manifest.ok_or(Denial::NoManifest)?;
    let declared = manifest
        .state
        .ok_or_else(|| Denial::NotDeclared(manifest.path.clone()))?;
    if declared.is_empty() {
        return Err(Denial::NothingDeclared(manifest.path.clone()));
    }
    let grant = declared.intersect(profile.state_operations);
    if !profile.allows(&manifest.id) || grant.is_empty() {
        return Err(Denial::Profile {
            profile: profile.name.clone(),
            id: manifest.id.clone(),
        });
    }
    Ok(Approval {
        id: manifest.id.clone(),
        grant,
    })
}

/// Decides whether flow `flow_id` may use its own state (`state.get` /
/// `state.set` nodes): the flow declares it by using them; the profile must
/// allow `flow:<id>` (`*` and `flow:*` patterns work). Flows get all operations.
pub fn approve_flow(flow_id: &str, profile: &Profile) -> Result<(), Denial> {
    let subject = format!("flow:{flow_id}");
    if profile.allows(&subject) && !profile.state_operations.is_empty() && valid_id(flow_id) {
        Ok(())
    } else {
        Err(Denial::Profile {
            profile: profile.name.clone(),
            id: subject,
        })
    }
}

/// Greentic identifier characters.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(state: Option<Grant>) -> Manifest {
        Manifest {
            path: "m.json".into(),
            id: "ai.greentic.counter".into(),
            state,
            limits: Limits::default(),
        }
    }

    #[test]
    fn manifests_are_read_with_limits_and_checked() {
        let dir = std::env::temp_dir().join(format!("policy-manifest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let ok = write(
            "ok.json",
            r#"{"id": "a.b", "capabilities": {"host": {"state": {"read": true}}}, "limits": {"memory_mb": 64, "fuel": 10}}"#,
        );
        let m = Manifest::read(&ok).unwrap();
        assert_eq!(
            m.state,
            Some(Grant {
                read: true,
                ..Grant::default()
            })
        );
        assert_eq!(
            m.limits,
            Limits {
                memory_mb: Some(64),
                wall_time_ms: None,
                fuel: Some(10)
            }
        );
        for (name, text, expected) in [
            (
                "noid.json",
                r#"{"capabilities": {}}"#,
                "`id` must be a string",
            ),
            ("badid.json", r#"{"id": "a:b"}"#, "`id` must be a string"),
            (
                "badstate.json",
                r#"{"id": "a", "capabilities": {"host": {"state": true}}}"#,
                "must be an object",
            ),
            (
                "badflag.json",
                r#"{"id": "a", "capabilities": {"host": {"state": {"read": "yes"}}}}"#,
                "must be a bool",
            ),
            (
                "badlimit.json",
                r#"{"id": "a", "limits": {"memory_mb": 0}}"#,
                "`limits.memory_mb` must be a positive integer",
            ),
            ("notjson.json", "{", "is not valid JSON"),
        ] {
            let err = Manifest::read(&write(name, text)).unwrap_err().to_string();
            assert!(err.contains(expected), "{name}: {err}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn fail_closed_without_declaration() {
        let p = Profile::default_profile();
        assert_eq!(approve(None, &p), Err(Denial::NoManifest));
        assert!(matches!(
            approve(Some(&manifest(None)), &p),
            Err(Denial::NotDeclared(_))
        ));
        assert!(matches!(
            approve(Some(&manifest(Some(Grant::default()))), &p),
            Err(Denial::NothingDeclared(_))
        ));
    }

    #[test]
    fn grant_is_the_intersection_and_profile_can_deny() {
        let read_only = Grant {
            read: true,
            ..Grant::default()
        };
        let ok = approve(
            Some(&manifest(Some(read_only))),
            &Profile::default_profile(),
        )
        .unwrap();
        assert_eq!(ok.grant, read_only);
        assert!(matches!(
            approve(Some(&manifest(Some(Grant::ALL))), &Profile::no_state()),
            Err(Denial::Profile { .. })
        ));
        let prefix = Profile {
            name: "p".into(),
            state_allow: vec!["ai.greentic.*".into()],
            state_operations: read_only,
        };
        assert_eq!(
            approve(Some(&manifest(Some(Grant::ALL))), &prefix)
                .unwrap()
                .grant,
            read_only
        );
        let other = Profile {
            state_allow: vec!["ai.other".into()],
            ..prefix
        };
        assert!(approve(Some(&manifest(Some(Grant::ALL))), &other).is_err());
    }
}
