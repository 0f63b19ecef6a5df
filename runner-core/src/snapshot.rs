//! A waiting run, written down so that the next message — in this process or
//! another — can resume it.
//!
//! The document is self-describing and versioned (`format`, `version`), names
//! the exact flow version it belongs to (`flow_hash`) and the tenant whose
//! run it is (`tenant`: resumed for another tenant, it is refused — a host
//! that hands snapshots back, such as a composed app's, cannot be tricked
//! into continuing one tenant's conversation as another), and holds only what the
//! runner owns: where to resume, `node.*`, `vars`, `prev`, the counters and
//! the turn's egress. It never holds a component's private state (components
//! keep that in the state store). Decoding checks every field; a document of
//! another format, version or flow is refused, never resumed wrongly.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The `format` field of every snapshot.
pub const SNAPSHOT_FORMAT: &str = "greentic-runner/snapshot";
/// The snapshot version this runner writes and reads.
pub const SNAPSHOT_VERSION: u32 = 2;
/// Largest snapshot document accepted, in bytes.
pub const MAX_SNAPSHOT_BYTES: usize = 16 * 1024 * 1024;

/// Where and how a run waits for its next message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// Always [`SNAPSHOT_FORMAT`].
    pub format: String,
    /// Always [`SNAPSHOT_VERSION`].
    pub version: u32,
    /// The flow the run waits in (after a `flow.goto`, not the first one).
    pub flow: String,
    /// `sha256:<hex>` of that flow's YAML and sidecars.
    pub flow_hash: String,
    /// Whose run it is: env, tenant, team, user.
    pub tenant: crate::Tenant,
    /// The node to resume at.
    pub node: String,
    /// `true`: the node itself runs again (a card parked by conditional
    /// routing that matched nothing); `false`: it is the node after a
    /// `session.wait`, run for the first time.
    pub redispatch: bool,
    /// The `session.wait` reason, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `node.<id>` outputs so far.
    pub nodes: Map<String, Value>,
    /// Flow variables.
    pub vars: Map<String, Value>,
    /// The last node's output.
    pub prev: Value,
    /// Steps executed in the whole conversation so far.
    pub steps: u32,
    /// `flow.goto` redirects so far.
    pub redirects: u32,
    /// What the waiting turn emitted (`emit.*`), already returned to the caller.
    pub egress: Vec<Value>,
    /// A `session.wait` with `timeout` / `until`: when it times out and
    /// where the run goes then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<WaitDeadline>,
}

/// The deadline of a wait: past it, the next resume takes the wait's
/// `status: timeout` route instead of the message's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitDeadline {
    /// Unix milliseconds.
    pub at_ms: u64,
    /// The node the timeout route goes to; `None`: the flow ends.
    pub node: Option<String>,
}

/// A snapshot document that cannot be resumed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unusable snapshot: {0}")]
pub struct SnapshotError(pub String);

impl Snapshot {
    /// The JSON document.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a snapshot is plain JSON")
    }

    /// Reads a document written by [`Snapshot::to_json`], checking its format
    /// and version.
    pub fn from_json(text: &str) -> Result<Snapshot, SnapshotError> {
        if text.len() > MAX_SNAPSHOT_BYTES {
            return Err(SnapshotError(format!(
                "{} bytes, more than the {MAX_SNAPSHOT_BYTES} allowed",
                text.len()
            )));
        }
        // Format and version first, so a future version gets a clear message
        // rather than a complaint about a field.
        let value: Value =
            serde_json::from_str(text).map_err(|e| SnapshotError(format!("not JSON: {e}")))?;
        match value.get("format").and_then(Value::as_str) {
            Some(SNAPSHOT_FORMAT) => {}
            Some(other) => {
                return Err(SnapshotError(format!(
                    "format `{other}`, expected `{SNAPSHOT_FORMAT}`"
                )));
            }
            None => return Err(SnapshotError("no `format` field".into())),
        }
        match value.get("version").and_then(Value::as_u64) {
            Some(v) if v == u64::from(SNAPSHOT_VERSION) => {}
            Some(v) => {
                return Err(SnapshotError(format!(
                    "version {v}; this runner reads version {SNAPSHOT_VERSION}"
                )));
            }
            None => return Err(SnapshotError("no numeric `version` field".into())),
        }
        serde_json::from_value(value).map_err(|e| SnapshotError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Found by the `snapshot` fuzz target: an 80-digit number in `vars`
    /// came back as another number after decode → encode → decode (serde_json
    /// parses floats exactly only with `float_roundtrip`).
    #[test]
    fn a_huge_number_in_a_snapshot_survives_two_round_trips() {
        let digits = "4".repeat(79) + "1";
        let mut snapshot = sample();
        let text = snapshot.to_json().replacen(
            "\"vars\":{}",
            &format!("\"vars\":{{\"big\":{digits}}}"),
            1,
        );
        assert!(text.contains(&digits), "{text}");
        snapshot = Snapshot::from_json(&text).unwrap();
        let again = Snapshot::from_json(&snapshot.to_json()).unwrap();
        assert_eq!(snapshot, again);
        assert_eq!(snapshot.to_json(), again.to_json());
    }

    fn sample() -> Snapshot {
        Snapshot {
            format: SNAPSHOT_FORMAT.into(),
            version: SNAPSHOT_VERSION,
            flow: "f".into(),
            flow_hash: "sha256:00".into(),
            tenant: crate::Tenant {
                env: "local".into(),
                tenant: "acme".into(),
                team: None,
                user: Some("u1".into()),
            },
            node: "ask".into(),
            redispatch: true,
            reason: None,
            nodes: json!({"a": {"x": 1}}).as_object().unwrap().clone(),
            vars: Map::new(),
            prev: json!({"x": 1}),
            steps: 3,
            redirects: 0,
            egress: vec![json!("hi")],
            deadline: Some(WaitDeadline {
                at_ms: 1_800_000_000_000,
                node: None,
            }),
        }
    }

    #[test]
    fn round_trips() {
        let s = sample();
        assert_eq!(Snapshot::from_json(&s.to_json()).unwrap(), s);
    }

    #[test]
    fn other_formats_versions_and_shapes_are_refused() {
        let mut doc: Value = serde_json::from_str(&sample().to_json()).unwrap();
        doc["version"] = json!(1);
        let e = Snapshot::from_json(&doc.to_string()).unwrap_err();
        assert!(e.to_string().contains("version 1"), "{e}");
        doc["version"] = json!(SNAPSHOT_VERSION);
        doc["format"] = json!("other");
        assert!(
            Snapshot::from_json(&doc.to_string())
                .unwrap_err()
                .to_string()
                .contains("format `other`")
        );
        doc["format"] = json!(SNAPSHOT_FORMAT);
        doc["extra"] = json!(1);
        assert!(Snapshot::from_json(&doc.to_string()).is_err());
        assert!(Snapshot::from_json("[").is_err());
        assert!(
            Snapshot::from_json("{}")
                .unwrap_err()
                .to_string()
                .contains("no `format`")
        );
    }
}
