//! What the operator allows: a profile (`default`, `no-state`, or a JSON file).

use serde::Deserialize;

use super::manifest::{Grant, PolicyError};

/// A profile file as written. `null` is taken as absent.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ProfileDoc {
    name: Option<String>,
    #[serde(deserialize_with = "or_default")]
    state: StateDoc,
    #[serde(deserialize_with = "or_default")]
    secrets: SecretsDoc,
    #[serde(deserialize_with = "or_default")]
    http: HttpDoc,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct StateDoc {
    /// Component ids (and `flow:<id>`) allowed state.
    #[serde(deserialize_with = "or_default")]
    allow: Vec<String>,
    /// `None`: all three.
    operations: Option<Vec<Operation>>,
    #[serde(deserialize_with = "or_default")]
    pins: std::collections::BTreeMap<String, String>,
    #[serde(deserialize_with = "or_default")]
    require_pins: bool,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Operation {
    Read,
    Write,
    Delete,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SecretsDoc {
    /// `None`: every component.
    allow: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct HttpDoc {
    #[serde(deserialize_with = "or_default")]
    allow: Vec<String>,
    timeout_ms: Option<u64>,
    max_response_bytes: Option<u64>,
}

/// `null` reads as the type's default.
fn or_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
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
    /// `{"name": "...", "state": {"allow": ["counter", "ai.greentic.*", "flow:*"], "operations": ["read", "write", "delete"],
    ///   "pins": {"id": "sha256:…"}, "require_pins": false},
    ///   "secrets": {"allow": ["*"]}, "http": {"allow": ["api.example.com", "127.0.0.1:*"], "timeout_ms": 30000, "max_response_bytes": 16777216}}`
    /// (`operations` defaults to all three, `secrets.allow` to `["*"]`,
    /// `http.allow` to none). Fields this runner does not know are ignored.
    pub fn select(spec: &str) -> Result<Profile, PolicyError> {
        match spec {
            "default" => return Ok(Profile::default_profile()),
            "no-state" => return Ok(Profile::no_state()),
            _ => {}
        }
        let path = std::path::Path::new(spec);
        if !path.is_file() {
            bail!(
                "unknown profile `{spec}`: use `default`, `no-state` or the path of a profile file"
            );
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| PolicyError(format!("cannot read profile `{spec}`: {e}")))?;
        let doc: ProfileDoc = serde_json::from_str(&text)
            .map_err(|e| PolicyError(format!("profile `{spec}`: {e}")))?;
        let state_operations = match doc.state.operations {
            None => Grant::ALL,
            Some(operations) => operations.iter().fold(Grant::default(), |g, op| match op {
                Operation::Read => Grant { read: true, ..g },
                Operation::Write => Grant { write: true, ..g },
                Operation::Delete => Grant { delete: true, ..g },
            }),
        };
        let mut state_pins = std::collections::BTreeMap::new();
        for (id, digest) in doc.state.pins {
            if !is_sha256_digest(&digest) {
                bail!(
                    "profile `{spec}`: `state.pins.{id}` must be `sha256:<64 hex digits>`; found {digest:?}"
                );
            }
            state_pins.insert(id, digest.to_ascii_lowercase());
        }
        let positive = |field: &str, value: Option<u64>, default: u64| match value {
            None => Ok(default),
            Some(0) => Err(PolicyError(format!(
                "profile `{spec}`: `{field}` must be a positive integer"
            ))),
            Some(n) => Ok(n),
        };
        Ok(Profile {
            name: doc.name.unwrap_or_else(|| spec.to_string()),
            state_allow: doc.state.allow,
            state_operations,
            state_pins,
            state_require_pins: doc.state.require_pins,
            secrets_allow: doc.secrets.allow.unwrap_or_else(|| vec!["*".into()]),
            http_allow: doc.http.allow,
            http_timeout_ms: positive(
                "http.timeout_ms",
                doc.http.timeout_ms,
                DEFAULT_HTTP_TIMEOUT_MS,
            )?,
            http_max_response_bytes: positive(
                "http.max_response_bytes",
                doc.http.max_response_bytes,
                DEFAULT_HTTP_MAX_RESPONSE_BYTES,
            )?,
        })
    }

    /// Adds hosts to `http.allow` (`host-shim --allow-host`).
    pub fn allow_hosts(&mut self, hosts: &[String]) {
        self.http_allow.extend(hosts.iter().cloned());
    }

    pub(super) fn allows(&self, id: &str) -> bool {
        matches_any(&self.state_allow, id)
    }
}

/// `sha256:` and 64 hex digits.
fn is_sha256_digest(text: &str) -> bool {
    text.strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

pub(super) fn matches_any(patterns: &[String], id: &str) -> bool {
    patterns
        .iter()
        .any(|pattern| match pattern.strip_suffix('*') {
            Some(prefix) => id.starts_with(prefix),
            None => pattern == id,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn select_text(name: &str, text: &str) -> Result<Profile, PolicyError> {
        let dir = std::env::temp_dir().join(format!("policy-profile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        Profile::select(path.to_str().unwrap())
    }

    #[test]
    fn profile_files_are_read_with_their_defaults() {
        let digest = format!("sha256:{}", "AB".repeat(32));
        let p = select_text(
            "full.json",
            &format!(
                r#"{{"name": "prod", "description": "ignored",
                  "state": {{"allow": ["a.*", "flow:*"], "operations": ["read"], "pins": {{"a.b": "{digest}"}}, "require_pins": true}},
                  "secrets": {{"allow": []}},
                  "http": {{"allow": ["api.example.com"], "timeout_ms": 5, "max_response_bytes": 7}}}}"#
            ),
        )
        .unwrap();
        assert_eq!(p.name, "prod");
        assert_eq!(p.state_allow, vec!["a.*", "flow:*"]);
        assert_eq!(
            p.state_operations,
            Grant {
                read: true,
                ..Grant::default()
            }
        );
        assert_eq!(p.state_pins["a.b"], digest.to_ascii_lowercase());
        assert!(p.state_require_pins);
        assert!(p.secrets_allow.is_empty());
        assert_eq!(p.http_allow, vec!["api.example.com"]);
        assert_eq!((p.http_timeout_ms, p.http_max_response_bytes), (5, 7));
        // Absent and null fields take the defaults.
        let p = select_text("empty.json", r#"{"state": null, "http": {"allow": null}}"#).unwrap();
        assert!(p.name.ends_with("empty.json"));
        assert!(p.state_allow.is_empty());
        assert_eq!(p.state_operations, Grant::ALL);
        assert_eq!(p.secrets_allow, vec!["*"]);
        assert!(p.http_allow.is_empty());
        assert_eq!(p.http_timeout_ms, DEFAULT_HTTP_TIMEOUT_MS);
    }

    #[test]
    fn bad_profile_files_are_refused_naming_the_field() {
        for (name, text, expected) in [
            (
                "op.json",
                r#"{"state": {"operations": ["exec"]}}"#,
                "unknown variant `exec`",
            ),
            ("allow.json", r#"{"state": {"allow": "a"}}"#, "invalid type"),
            (
                "pin.json",
                r#"{"state": {"pins": {"a": "md5:00"}}}"#,
                "`state.pins.a` must be `sha256:",
            ),
            (
                "zero.json",
                r#"{"http": {"timeout_ms": 0}}"#,
                "`http.timeout_ms` must be a positive integer",
            ),
            ("json.json", "{", "EOF while parsing"),
        ] {
            let err = select_text(name, text).unwrap_err().to_string();
            assert!(err.contains(expected), "{name}: {err}");
            assert!(err.contains(name), "{name}: the file is named: {err}");
        }
        let err = Profile::select("/no/such/profile.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown profile"), "{err}");
    }
}
