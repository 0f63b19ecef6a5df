//! The gate: whether a component (by its manifest) may use a capability
//! under a profile, and the gating table shared by host-shim and compose.

use std::path::PathBuf;

use super::manifest::{Grant, Manifest, valid_id};
use super::profile::{Profile, matches_any};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Limits;

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
    use crate::policy::Limits;
    use crate::policy::host_allowed;

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
