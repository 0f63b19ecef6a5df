//! Capability gating: which node components may use which host interfaces.
//!
//! [`CAPABILITIES`] is the one gating table (interface -> manifest field ->
//! profile field), shared by host-shim and the composition. A component gets a
//! gated interface only when (a) its manifest declares it and (b) the selected
//! profile allows it; for state, the operations it gets are those both grant.
//! Anything else — no manifest, a manifest without the field, a profile that
//! does not list it — means no such import (fail closed). Telemetry is not
//! gated: every component may log.

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

/// An execution profile: what the operator allows, whatever manifests ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Name used in messages.
    pub name: String,
    /// Component ids allowed state: exact ids, `prefix.*`, or `*` for all.
    pub state_allow: Vec<String>,
    /// Operations allowed to those components.
    pub state_operations: Grant,
    /// `state.pins`: component id -> the `sha256:<hex>` of the only binary
    /// that may use that id's state.
    pub state_pins: std::collections::BTreeMap<String, String>,
    /// `state.require_pins`: a component gets state only if its id is pinned
    /// (here, or by the flow's resolve summary).
    pub state_require_pins: bool,
    /// Component ids allowed the secrets they declare (patterns as for state).
    pub secrets_allow: Vec<String>,
    /// Hosts components with `http.client` may reach: `host` (the scheme's
    /// default port), `host:port`, `host:*`, `*.domain`. Empty: no HTTP.
    pub http_allow: Vec<String>,
    /// Per-request timeout for outbound HTTP (a request may ask for less).
    pub http_timeout_ms: u64,
    /// Largest HTTP response body a component may receive.
    pub http_max_response_bytes: u64,
}

/// Defaults of the HTTP limits.
pub const DEFAULT_HTTP_TIMEOUT_MS: u64 = 30_000;
/// 16 MiB, the node payload cap.
pub const DEFAULT_HTTP_MAX_RESPONSE_BYTES: u64 = 16 << 20;

impl Profile {
    /// The default profile: every component whose manifest declares state gets
    /// what it declares.
    pub fn default_profile() -> Profile {
        Profile {
            name: "default".into(),
            state_allow: vec!["*".into()],
            state_operations: Grant::ALL,
            state_pins: Default::default(),
            state_require_pins: false,
            secrets_allow: vec!["*".into()],
            http_allow: vec![],
            http_timeout_ms: DEFAULT_HTTP_TIMEOUT_MS,
            http_max_response_bytes: DEFAULT_HTTP_MAX_RESPONSE_BYTES,
        }
    }

    /// A profile that allows no state at all.
    pub fn no_state() -> Profile {
        Profile {
            name: "no-state".into(),
            state_allow: vec![],
            state_operations: Grant::default(),
            state_pins: Default::default(),
            state_require_pins: false,
            ..Profile::default_profile()
        }
    }

    /// `default`, `no-state`, or a path to a profile file:
    /// `{"name": "...", "state": {"allow": ["counter", "ai.greentic.*", "flow:*"], "operations": ["read", "write", "delete"]},
    ///   "secrets": {"allow": ["*"]}, "http": {"allow": ["api.example.com", "127.0.0.1:*"], "timeout_ms": 30000, "max_response_bytes": 16777216}}`
    /// (`operations` defaults to all three, `secrets.allow` to `["*"]`,
    /// `http.allow` to none).
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
        let state_pins = match state.get("pins") {
            None | Some(Value::Null) => Default::default(),
            Some(Value::Object(pins)) => {
                let mut out = std::collections::BTreeMap::new();
                for (id, digest) in pins {
                    match digest.as_str() {
                        Some(d) if is_sha256_digest(d) => {
                            out.insert(id.clone(), d.to_ascii_lowercase());
                        }
                        _ => bail!(
                            "profile `{spec}`: `state.pins.{id}` must be `sha256:<64 hex digits>`; found {digest}"
                        ),
                    }
                }
                out
            }
            Some(_) => bail!(
                "profile `{spec}`: `state.pins` must be an object of component id -> \"sha256:<hex>\""
            ),
        };
        let state_require_pins = match state.get("require_pins") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => bail!("profile `{spec}`: `state.require_pins` must be a bool"),
        };
        let list = |section: &str, default: Vec<String>| -> Result<Vec<String>, PolicyError> {
            match doc.pointer(&format!("/{section}/allow")) {
                None | Some(Value::Null) => Ok(default),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        PolicyError(format!(
                            "profile `{spec}`: `{section}.allow` must be a list of strings"
                        ))
                    }),
                Some(_) => bail!("profile `{spec}`: `{section}.allow` must be a list of strings"),
            }
        };
        let number = |pointer: &str, default: u64| -> Result<u64, PolicyError> {
            match doc.pointer(pointer) {
                None | Some(Value::Null) => Ok(default),
                Some(v) => v.as_u64().filter(|n| *n > 0).ok_or_else(|| {
                    PolicyError(format!(
                        "profile `{spec}`: `{}` must be a positive integer",
                        &pointer[1..].replace('/', ".")
                    ))
                }),
            }
        };
        Ok(Profile {
            name,
            state_allow,
            state_operations,
            state_pins,
            state_require_pins,
            secrets_allow: list("secrets", vec!["*".into()])?,
            http_allow: list("http", vec![])?,
            http_timeout_ms: number("/http/timeout_ms", DEFAULT_HTTP_TIMEOUT_MS)?,
            http_max_response_bytes: number(
                "/http/max_response_bytes",
                DEFAULT_HTTP_MAX_RESPONSE_BYTES,
            )?,
        })
    }

    /// Adds hosts to `http.allow` (`host-shim --allow-host`).
    pub fn allow_hosts(&mut self, hosts: &[String]) {
        self.http_allow.extend(hosts.iter().cloned());
    }

    fn allows(&self, id: &str) -> bool {
        matches_any(&self.state_allow, id)
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
    /// The manifest does not declare the capability (the manifest field).
    #[error("its manifest `{0}` does not declare `{1}`")]
    NotDeclared(PathBuf, &'static str),
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
    /// The profile does not allow another capability (named) for this component.
    #[error("profile `{profile}` does not allow {capability} for `{id}` (profile field `{field}`)")]
    ProfileCapability {
        /// Profile name.
        profile: String,
        /// `secrets`, `http`.
        capability: &'static str,
        /// The profile field that would allow it.
        field: &'static str,
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
        .ok_or_else(|| Denial::NotDeclared(manifest.path.clone(), "capabilities.host.state"))?;
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

/// What binds a component's bytes to the state id its manifest claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateBinding {
    /// The profile's `state.pins` names this binary's digest for the id.
    ProfilePin,
    /// The flow's resolve summary pins the node's digest (checked on resolve).
    SummaryPin,
    /// Nothing pins it: the host binds the id to the first binary that
    /// claims it and refuses any other.
    FirstClaim,
}

/// A binary's claim on a state id, checked against what the operator pinned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinDenial {
    /// The profile pins the id to another binary.
    #[error("profile `{profile}` pins state id `{id}` to {expected}; this binary is {actual}")]
    Mismatch {
        /// Profile name.
        profile: String,
        /// The id.
        id: String,
        /// The pinned digest.
        expected: String,
        /// This binary's digest.
        actual: String,
    },
    /// The profile requires a pin and there is none.
    #[error(
        "profile `{profile}` requires state ids to be pinned (`state.require_pins`), and nothing pins `{id}` (add `\"{id}\": \"{actual}\"` to `state.pins`, or pin the node's digest in the resolve summary)"
    )]
    Unpinned {
        /// Profile name.
        profile: String,
        /// The id.
        id: String,
        /// This binary's digest.
        actual: String,
    },
}

/// Checks that the binary with `digest` (`sha256:<hex>`) may use the state of
/// `id`: a profile pin must match; a resolve-summary pin (`summary_pinned`,
/// already checked against the bytes) binds it; otherwise it is a first
/// claim, unless the profile requires pins.
pub fn bind_state_id(
    id: &str,
    digest: &str,
    summary_pinned: bool,
    profile: &Profile,
) -> Result<StateBinding, PinDenial> {
    if let Some(pin) = profile.state_pins.get(id) {
        return if pin.eq_ignore_ascii_case(digest) {
            Ok(StateBinding::ProfilePin)
        } else {
            Err(PinDenial::Mismatch {
                profile: profile.name.clone(),
                id: id.to_string(),
                expected: pin.clone(),
                actual: digest.to_string(),
            })
        };
    }
    if summary_pinned {
        return Ok(StateBinding::SummaryPin);
    }
    if profile.state_require_pins {
        return Err(PinDenial::Unpinned {
            profile: profile.name.clone(),
            id: id.to_string(),
            actual: digest.to_string(),
        });
    }
    Ok(StateBinding::FirstClaim)
}

/// `sha256:` and 64 hex digits.
fn is_sha256_digest(text: &str) -> bool {
    text.strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
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

fn matches_any(patterns: &[String], id: &str) -> bool {
    patterns
        .iter()
        .any(|pattern| match pattern.strip_suffix('*') {
            Some(prefix) => id.starts_with(prefix),
            None => pattern == id,
        })
}

/// A host interface a component may import only when approved (telemetry: always).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// `greentic:state/state-store`
    State,
    /// `greentic:secrets-store/secrets-store`
    Secrets,
    /// `greentic:http/http-client`
    Http,
    /// `greentic:telemetry/logger-api`
    Telemetry,
}

impl Capability {
    /// What it gives, for messages ("may not use …").
    pub fn noun(self) -> &'static str {
        match self {
            Capability::State => "state",
            Capability::Secrets => "secrets",
            Capability::Http => "outbound HTTP",
            Capability::Telemetry => "telemetry",
        }
    }
}

/// One row of the gating table.
#[derive(Debug, Clone, Copy)]
pub struct CapabilityRow {
    /// The capability.
    pub capability: Capability,
    /// Import names start with this (any version).
    pub interface: &'static str,
    /// Where a manifest declares it (`None`: always granted).
    pub manifest_field: Option<&'static str>,
    /// Where a profile allows it.
    pub profile_field: Option<&'static str>,
}

/// The gating table: interface -> manifest field -> profile field. Adding a
/// capability is one row here and one host module.
pub const CAPABILITIES: &[CapabilityRow] = &[
    CapabilityRow {
        capability: Capability::State,
        interface: "greentic:state/state-store@",
        manifest_field: Some("capabilities.host.state"),
        profile_field: Some("state.allow"),
    },
    CapabilityRow {
        capability: Capability::Secrets,
        interface: "greentic:secrets-store/secrets-store@",
        manifest_field: Some("capabilities.host.secrets.required"),
        profile_field: Some("secrets.allow"),
    },
    CapabilityRow {
        capability: Capability::Http,
        interface: "greentic:http/http-client@",
        manifest_field: Some("capabilities.host.http.client"),
        profile_field: Some("http.allow"),
    },
    CapabilityRow {
        capability: Capability::Telemetry,
        interface: "greentic:telemetry/logger-api@",
        manifest_field: None,
        profile_field: None,
    },
];

/// The gating row of an import name, if it is a gated host interface.
pub fn capability_of(import: &str) -> Option<&'static CapabilityRow> {
    CAPABILITIES
        .iter()
        .find(|row| import.starts_with(row.interface))
}

/// What an approved component may do with a capability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CapabilityGrant {
    /// State: namespace and operations.
    State(Approval),
    /// Secrets: the keys its manifest declares.
    Secrets(Vec<String>),
    /// HTTP: the hosts the profile allows.
    Http(Vec<String>),
    /// Telemetry: always.
    Telemetry,
}

/// Decides whether a component with `manifest` may use `capability` under `profile`.
pub fn approve_capability(
    capability: Capability,
    manifest: Option<&Manifest>,
    profile: &Profile,
) -> Result<CapabilityGrant, Denial> {
    let denied = |capability, field, id: &str| Denial::ProfileCapability {
        profile: profile.name.clone(),
        capability,
        field,
        id: id.to_string(),
    };
    match capability {
        Capability::Telemetry => Ok(CapabilityGrant::Telemetry),
        Capability::State => approve(manifest, profile).map(CapabilityGrant::State),
        Capability::Secrets => {
            let manifest = manifest.ok_or(Denial::NoManifest)?;
            let keys = manifest.secrets.clone().ok_or_else(|| {
                Denial::NotDeclared(manifest.path.clone(), "capabilities.host.secrets.required")
            })?;
            if !matches_any(&profile.secrets_allow, &manifest.id) {
                return Err(denied("secrets", "secrets.allow", &manifest.id));
            }
            Ok(CapabilityGrant::Secrets(keys))
        }
        Capability::Http => {
            let manifest = manifest.ok_or(Denial::NoManifest)?;
            if !manifest.http_client {
                return Err(Denial::NotDeclared(
                    manifest.path.clone(),
                    "capabilities.host.http.client",
                ));
            }
            if profile.http_allow.is_empty() {
                return Err(denied("outbound HTTP", "http.allow", &manifest.id));
            }
            Ok(CapabilityGrant::Http(profile.http_allow.clone()))
        }
    }
}

/// Whether `host:port` (of a URL with `default_port` for its scheme) is in
/// `allow`: `host` matches the default port, `host:port` that port, `host:*`
/// any port, and a leading `*.` any subdomain. Hosts compare case-insensitively.
pub fn host_allowed(allow: &[String], host: &str, port: u16, default_port: u16) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    allow.iter().any(|pattern| {
        let pattern = pattern.to_ascii_lowercase();
        let (pattern_host, pattern_port) = match pattern.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() && !h.ends_with(':') => {
                (h.to_string(), Some(p.to_string()))
            }
            _ => (pattern.clone(), None),
        };
        let pattern_host = pattern_host.trim_start_matches('[').trim_end_matches(']');
        let host_ok = match pattern_host.strip_prefix("*.") {
            Some(domain) => host.ends_with(&format!(".{domain}")),
            None => pattern_host == host,
        };
        let port_ok = match pattern_port.as_deref() {
            None => port == default_port,
            Some("*") => true,
            Some(p) => p.parse::<u16>() == Ok(port),
        };
        host_ok && port_ok
    })
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
            secrets: None,
            http_client: false,
            asset_mounts: vec![],
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
            Err(Denial::NotDeclared(_, _))
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
        // Pins: a profile pin must match; a summary pin or a first claim binds.
        let digest = format!("sha256:{}", "ab".repeat(32));
        let other = format!("sha256:{}", "cd".repeat(32));
        let mut pinned = Profile::default_profile();
        pinned.state_pins.insert("a.b".into(), digest.clone());
        assert_eq!(
            bind_state_id("a.b", &digest, false, &pinned),
            Ok(StateBinding::ProfilePin)
        );
        assert!(matches!(
            bind_state_id("a.b", &other, true, &pinned),
            Err(PinDenial::Mismatch { .. })
        ));
        assert_eq!(
            bind_state_id("c", &other, true, &pinned),
            Ok(StateBinding::SummaryPin)
        );
        assert_eq!(
            bind_state_id("c", &other, false, &pinned),
            Ok(StateBinding::FirstClaim)
        );
        pinned.state_require_pins = true;
        assert!(matches!(
            bind_state_id("c", &other, false, &pinned),
            Err(PinDenial::Unpinned { .. })
        ));
        let prefix = Profile {
            name: "p".into(),
            state_allow: vec!["ai.greentic.*".into()],
            state_operations: read_only,
            ..Profile::default_profile()
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

#[cfg(test)]
mod capability_tests {
    use super::*;

    fn manifest(secrets: Option<Vec<&str>>, http: bool) -> Manifest {
        Manifest {
            path: "m.json".into(),
            id: "ai.greentic.tool".into(),
            state: None,
            limits: Limits::default(),
            secrets: secrets.map(|k| k.into_iter().map(String::from).collect()),
            http_client: http,
            asset_mounts: vec![],
        }
    }

    #[test]
    fn every_gated_import_has_one_row() {
        for (import, capability) in [
            ("greentic:state/state-store@1.0.0", Capability::State),
            (
                "greentic:secrets-store/secrets-store@1.0.0",
                Capability::Secrets,
            ),
            ("greentic:http/http-client@1.1.0", Capability::Http),
            ("greentic:telemetry/logger-api@1.0.0", Capability::Telemetry),
        ] {
            assert_eq!(capability_of(import).unwrap().capability, capability);
        }
        assert!(capability_of("wasi:http/outgoing-handler@0.2.0").is_none());
    }

    #[test]
    fn secrets_and_http_need_manifest_and_profile() {
        let default = Profile::default_profile();
        let with_keys = manifest(Some(vec!["API_KEY"]), false);
        assert_eq!(
            approve_capability(Capability::Secrets, Some(&with_keys), &default),
            Ok(CapabilityGrant::Secrets(vec!["API_KEY".into()]))
        );
        assert!(matches!(
            approve_capability(Capability::Secrets, Some(&manifest(None, false)), &default),
            Err(Denial::NotDeclared(_, "capabilities.host.secrets.required"))
        ));
        assert_eq!(
            approve_capability(Capability::Secrets, None, &default),
            Err(Denial::NoManifest)
        );
        let strict = Profile {
            secrets_allow: vec!["other.*".into()],
            ..default.clone()
        };
        assert!(matches!(
            approve_capability(Capability::Secrets, Some(&with_keys), &strict),
            Err(Denial::ProfileCapability {
                capability: "secrets",
                ..
            })
        ));
        // HTTP: declared, but the default profile allows no host.
        let http = manifest(None, true);
        let err = approve_capability(Capability::Http, Some(&http), &default).unwrap_err();
        assert!(err.to_string().contains("http.allow"), "{err}");
        let mut open = default.clone();
        open.allow_hosts(&["127.0.0.1:*".into()]);
        assert!(approve_capability(Capability::Http, Some(&http), &open).is_ok());
        assert!(approve_capability(Capability::Http, Some(&manifest(None, false)), &open).is_err());
        assert_eq!(
            approve_capability(Capability::Telemetry, None, &default),
            Ok(CapabilityGrant::Telemetry)
        );
    }

    #[test]
    fn host_patterns() {
        let allow: Vec<String> = ["api.example.com", "127.0.0.1:*", "*.corp.test", "svc:8080"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(host_allowed(&allow, "api.example.com", 443, 443));
        assert!(host_allowed(&allow, "API.example.com", 443, 443));
        assert!(!host_allowed(&allow, "api.example.com", 8443, 443));
        assert!(host_allowed(&allow, "127.0.0.1", 9999, 80));
        assert!(host_allowed(&allow, "a.corp.test", 80, 80));
        assert!(!host_allowed(&allow, "corp.test.evil", 80, 80));
        assert!(!host_allowed(&allow, "evilcorp.test", 80, 80));
        assert!(host_allowed(&allow, "svc", 8080, 80));
        assert!(!host_allowed(&allow, "svc", 80, 80));
        assert!(!host_allowed(&allow, "localhost", 80, 80));
    }
}
