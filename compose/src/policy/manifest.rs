//! What a component's manifest declares: its id, the host capabilities it
//! asks for, its limits. Read by hand over JSON on purpose: greentic's
//! manifests carry many fields this runner does not read, in shapes that
//! vary between tools; only the fields below are checked, each with a message
//! naming the file and the field.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// A manifest or profile that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub(super) String);

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
    /// Secret keys declared in `capabilities.host.secrets.required` and
    /// `secret_requirements` (`None`: neither is declared).
    pub secrets: Option<Vec<String>>,
    /// `capabilities.host.http.client`.
    pub http_client: bool,
    /// Guest paths of `capabilities.wasi.filesystem.mounts` with
    /// `host_class: assets` (read-only pack/flow assets).
    pub asset_mounts: Vec<String>,
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
        // Secret requirements: strings or `{"key": …}` objects, in either place.
        let mut secrets: Option<Vec<String>> = None;
        for pointer in [
            "/capabilities/host/secrets/required",
            "/secret_requirements",
        ] {
            match doc.pointer(pointer) {
                None | Some(Value::Null) => {}
                Some(Value::Array(items)) => {
                    let keys = secrets.get_or_insert_with(Vec::new);
                    for item in items {
                        let key = item
                            .as_str()
                            .or_else(|| item.get("key").and_then(Value::as_str))
                            .or_else(|| item.get("name").and_then(Value::as_str));
                        match key {
                            // `/` scopes a secret to a tenant (`acme/API_TOKEN`): a
                            // component naming one would read that tenant's secret
                            // while running for another.
                            Some(k) if k.contains('/') => bail!(
                                "`{}`: secret key `{k}` in `{}` contains `/`, the tenant scope separator; declare the key without a tenant (the run's tenant is applied by the host)",
                                path.display(),
                                &pointer[1..].replace('/', ".")
                            ),
                            Some(k) if !k.is_empty() => keys.push(k.to_string()),
                            _ => bail!(
                                "`{}`: `{}` holds secret keys (strings or {{\"key\": …}}); found {item}",
                                path.display(),
                                &pointer[1..].replace('/', ".")
                            ),
                        }
                    }
                }
                Some(_) => bail!(
                    "`{}`: `{}` must be a list of secret keys",
                    path.display(),
                    &pointer[1..].replace('/', ".")
                ),
            }
        }
        let http_client = match doc.pointer("/capabilities/host/http/client") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => bail!(
                "`{}`: `capabilities.host.http.client` must be a bool",
                path.display()
            ),
        };
        let asset_mounts = doc
            .pointer("/capabilities/wasi/filesystem/mounts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|m| m.get("host_class").and_then(Value::as_str) == Some("assets"))
            .filter_map(|m| m.get("guest_path").and_then(Value::as_str))
            .map(str::to_string)
            .collect();
        Ok(Manifest {
            path: path.to_path_buf(),
            id,
            state,
            limits,
            secrets,
            http_client,
            asset_mounts,
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
