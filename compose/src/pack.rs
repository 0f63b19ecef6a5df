//! Greentic packs: a pack directory (`pack.yaml`, `flows/`, `components/`,
//! `assets/`) or a `.gtpack` archive built by packc.
//!
//! An archive is unpacked once into a directory of the same layout (under a
//! cache directory, keyed by the archive's SHA-256), with a `pack.yaml` of
//! ours listing what it holds; from then on both kinds are one thing, a
//! [`Pack`], and the rest of the runner sees plain files:
//!
//! - flows: the archive's `flows/<id>/flow.ygtc` (packc keeps them in dev
//!   builds); otherwise the flow packc compiled into `manifest.cbor`, written
//!   back as YGTC (the node's component id, operation, input and routing);
//! - components: `components/*.wasm`; a `components/<x>.manifest.cbor` is
//!   transcoded to the `<x>.manifest.json` the capability gate reads;
//! - assets: `assets/**`, the read-only `/assets` of components that mount it.
//!
//! Every file the archive's `sbom.json` lists is checked against its BLAKE3
//! hash; entries that would leave the directory, and archives larger than
//! [`MAX_UNPACKED_BYTES`], are refused naming the entry.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// Largest total size of an archive's unpacked entries.
pub const MAX_UNPACKED_BYTES: u64 = 1 << 30;
/// Most entries an archive may hold.
pub const MAX_ENTRIES: usize = 10_000;

/// A pack could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("{pack}: {message}")]
pub struct PackError {
    /// The pack (directory or archive, with the entry inside it when known).
    pub pack: String,
    /// What is wrong.
    pub message: String,
}

fn err(pack: &Path, message: impl Into<String>) -> PackError {
    PackError {
        pack: pack.display().to_string(),
        message: message.into(),
    }
}

/// One flow of a pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackFlow {
    /// Flow id.
    pub id: String,
    /// The flow file.
    pub file: PathBuf,
    /// Entrypoint names (`default` marks the pack's entry flow).
    pub entrypoints: Vec<String>,
}

/// A pack directory, or an archive unpacked into one.
#[derive(Debug, Clone)]
pub struct Pack {
    /// The directory.
    pub root: PathBuf,
    /// `pack_id`.
    pub pack_id: String,
    /// Its flows, in `pack.yaml` order.
    pub flows: Vec<PackFlow>,
    /// Component id -> `.wasm` file, from `pack.yaml`'s `components`.
    pub components: BTreeMap<String, PathBuf>,
}

/// `pack.yaml`: the fields the runner reads (others are packc's).
#[derive(Debug, Deserialize)]
struct PackYaml {
    pack_id: String,
    #[serde(default)]
    flows: Vec<PackYamlFlow>,
    #[serde(default)]
    components: Vec<PackYamlComponent>,
}

#[derive(Debug, Deserialize)]
struct PackYamlFlow {
    id: String,
    file: PathBuf,
    #[serde(default)]
    entrypoints: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct PackYamlComponent {
    id: String,
    wasm: PathBuf,
}

impl Pack {
    /// Opens the pack directory `root` (it has a `pack.yaml`).
    pub fn open_dir(root: &Path) -> Result<Pack, PackError> {
        let file = root.join("pack.yaml");
        let text = std::fs::read_to_string(&file)
            .map_err(|e| err(&file, format!("cannot read the pack manifest: {e}")))?;
        let doc: PackYaml = serde_yaml::from_str(&text).map_err(|e| err(&file, e.to_string()))?;
        let mut flows: Vec<PackFlow> = Vec::new();
        for flow in doc.flows {
            if flows.iter().any(|f| f.id == flow.id) {
                return Err(err(&file, format!("flow id `{}` is listed twice", flow.id)));
            }
            flows.push(PackFlow {
                file: root.join(&flow.file),
                id: flow.id,
                entrypoints: flow.entrypoints,
            });
        }
        if flows.is_empty() {
            // A pack directory without a flow list: its `flows/` files.
            flows = discover_flows(&root.join("flows"));
        }
        let components = doc
            .components
            .into_iter()
            .map(|c| (c.id, root.join(c.wasm)))
            .collect();
        Ok(Pack {
            root: root.to_path_buf(),
            pack_id: doc.pack_id,
            flows,
            components,
        })
    }

    /// The pack a flow file belongs to: a `pack.yaml` in its directory or up
    /// to two levels above (`flows/x.ygtc`, `flows/<id>/flow.ygtc`).
    pub fn enclosing(flow: &Path) -> Option<Pack> {
        let flow = std::path::absolute(flow).ok()?;
        let mut dir = flow.parent();
        for _ in 0..3 {
            let d = dir?;
            if d.join("pack.yaml").is_file() {
                return Pack::open_dir(d).ok();
            }
            dir = d.parent();
        }
        None
    }

    /// The entry flow: the one with the `default` entrypoint, else the first.
    pub fn entry(&self) -> Result<&PackFlow, PackError> {
        self.flows
            .iter()
            .find(|f| f.entrypoints.iter().any(|e| e == "default"))
            .or_else(|| self.flows.first())
            .ok_or_else(|| err(&self.root, "the pack has no flows"))
    }

    /// The flow `id`, or an error listing the pack's flows.
    pub fn flow(&self, id: &str) -> Result<&PackFlow, PackError> {
        self.flows.iter().find(|f| f.id == id).ok_or_else(|| {
            let ids: Vec<&str> = self.flows.iter().map(|f| f.id.as_str()).collect();
            err(
                &self.root,
                format!("no flow `{id}` (flows: {})", ids.join(", ")),
            )
        })
    }
}

/// Flow files under `dir` (`*.ygtc` and `<id>/flow.ygtc`), ids from their `id:`.
fn discover_flows(dir: &Path) -> Vec<PackFlow> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            let inner = path.join("flow.ygtc");
            if inner.is_file() {
                files.push(inner);
            }
        } else if path.extension().is_some_and(|e| e == "ygtc") {
            files.push(path);
        }
    }
    files.sort();
    files
        .into_iter()
        .filter_map(|file| {
            let id = flow_id_of(&file)?;
            Some(PackFlow {
                id,
                file,
                entrypoints: Vec::new(),
            })
        })
        .collect()
}

/// The top-level `id` of a flow file, if it has one.
pub fn flow_id_of(file: &Path) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).ok()?;
    doc.get("id")?.as_str().map(str::to_string)
}

/// What `run`, `check` and `compose` were pointed at.
#[derive(Debug, Clone)]
pub enum Target {
    /// A flow file (maybe inside a pack).
    Flow(PathBuf),
    /// A pack, and the flow of it asked for with `#<flow id>`.
    Pack(Pack, Option<String>),
}

impl Target {
    /// `FLOW`, a pack directory, or `PACK.gtpack`, each with an optional
    /// `#<flow id>`; archives are unpacked under `cache`.
    pub fn parse(arg: &Path, cache: &Path) -> Result<Target, PackError> {
        let text = arg.to_string_lossy();
        let (path, flow) = match text.rsplit_once('#') {
            Some((p, f)) if !f.is_empty() && !f.contains('/') => {
                (PathBuf::from(p), Some(f.to_string()))
            }
            _ => (arg.to_path_buf(), None),
        };
        let is_archive = path.extension().is_some_and(|e| e == "gtpack");
        if is_archive {
            let root = unpack(&path, cache)?;
            return Ok(Target::Pack(Pack::open_dir(&root)?, flow));
        }
        if path.is_dir() && path.join("pack.yaml").is_file() {
            match Pack::open_dir(&path) {
                Ok(pack) => return Ok(Target::Pack(pack, flow)),
                // Some directories hold a `pack.yaml` of another kind:
                // without `#flow` they are plain directories of flows.
                Err(e) if flow.is_some() => return Err(e),
                Err(_) => {}
            }
        }
        if flow.is_some() {
            return Err(err(
                &path,
                "`#<flow id>` needs a pack (a `.gtpack` or a directory with `pack.yaml`)",
            ));
        }
        Ok(Target::Flow(arg.to_path_buf()))
    }

    /// The flow file to run: the named flow, the pack's entry flow, or the file.
    pub fn flow_file(&self) -> Result<PathBuf, PackError> {
        match self {
            Target::Flow(path) if path.is_dir() => Err(match Pack::open_dir(path) {
                Err(e) if path.join("pack.yaml").is_file() => e,
                _ => err(
                    path,
                    "a directory: give a flow file, a pack directory (with `pack.yaml`) or a `.gtpack`",
                ),
            }),
            Target::Flow(path) => Ok(path.clone()),
            Target::Pack(pack, Some(id)) => Ok(pack.flow(id)?.file.clone()),
            Target::Pack(pack, None) => Ok(pack.entry()?.file.clone()),
        }
    }
}

impl Target {
    /// The flows it holds: a pack's (or the one asked for), a directory's
    /// flow files, or the flow file itself.
    pub fn flow_files(&self) -> Result<Vec<PathBuf>, PackError> {
        match self {
            Target::Pack(pack, None) => Ok(pack.flows.iter().map(|f| f.file.clone()).collect()),
            Target::Flow(dir) if dir.is_dir() => {
                flow_files_in(dir).map_err(|e| err(dir, format!("cannot read it: {e}")))
            }
            other => Ok(vec![other.flow_file()?]),
        }
    }
}

/// Every flow file under `dir`, sorted: `*.ygtc`, `*.yaml`, `*.yml` with a
/// top-level `nodes:` (pack manifests, pack indexes and placeholders that
/// share the extensions have none).
pub fn flow_files_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                walk(&path, out)?;
                continue;
            }
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            let is_flow = matches!(ext, "ygtc" | "yaml" | "yml")
                && std::fs::read_to_string(&path)
                    .is_ok_and(|text| text.lines().any(|l| l.starts_with("nodes:")));
            if is_flow {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, &mut files)?;
    files.sort();
    Ok(files)
}

/// Largest `manifest.cbor`, `sbom.json`, flow or component manifest read
/// into memory (everything else is streamed to disk).
pub const MAX_METADATA_BYTES: u64 = 16 << 20;

/// Unpacks `archive` into `<cache>/packs/<sha256 prefix>/` (once; a finished
/// directory is reused if it is this user's and no one else may write it)
/// and returns that directory. Entries are streamed to disk: memory stays
/// small whatever the archive unpacks to, and every limit is checked from
/// the archive's directory before any entry is read.
pub fn unpack(archive: &Path, cache: &Path) -> Result<PathBuf, PackError> {
    let digest = {
        let mut file =
            std::fs::File::open(archive).map_err(|e| err(archive, format!("cannot read: {e}")))?;
        let mut hasher = Sha256::new();
        std::io::copy(&mut file, &mut hasher)
            .map_err(|e| err(archive, format!("cannot read: {e}")))?;
        format!("{:x}", hasher.finalize())
    };
    let packs = cache.join("packs");
    crate::private_dir::create(&packs).map_err(|e| err(&packs, e.to_string()))?;
    let root = packs.join(&digest[..32]);
    if root.join("pack.yaml").is_file() {
        crate::private_dir::check_one(&packs)
            .and_then(|()| crate::private_dir::check(&root))
            .map_err(|e| err(archive, e.to_string()))?;
        return Ok(root);
    }
    // Unpack beside it and rename: a concurrent or interrupted unpack never
    // leaves a half-written pack where a finished one is looked for.
    let staging = packs.join(format!(".{}-{}", &digest[..32], std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let result = unpack_into(archive, &staging)
        .and_then(|()| {
            crate::private_dir::seal(&staging)
                .map_err(|e| err(&staging, format!("cannot seal: {e}")))
        })
        .and_then(|()| {
            match std::fs::rename(&staging, &root) {
                Ok(()) => Ok(()),
                // Another process finished first: theirs is as good.
                Err(_) if root.join("pack.yaml").is_file() => Ok(()),
                Err(e) => Err(err(
                    archive,
                    format!("cannot unpack into `{}`: {e}", root.display()),
                )),
            }
        });
    let _ = std::fs::remove_dir_all(&staging);
    result.map(|()| root)
}

/// Where the entries are streamed before they are laid out.
const RAW: &str = ".entries";

fn unpack_into(archive: &Path, dest: &Path) -> Result<(), PackError> {
    let entry_err = |name: &str, message: String| PackError {
        pack: format!("{}#{name}", archive.display()),
        message,
    };
    let file =
        std::fs::File::open(archive).map_err(|e| err(archive, format!("cannot read: {e}")))?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| err(archive, format!("not a pack archive (zip): {e}")))?;
    if zip.len() > MAX_ENTRIES {
        return Err(err(
            archive,
            format!("{} entries, more than {MAX_ENTRIES}", zip.len()),
        ));
    }
    // The archive's directory first: names and declared sizes, nothing read yet.
    let mut names = Vec::new();
    let mut total = 0u64;
    for i in 0..zip.len() {
        let entry = zip
            .by_index_raw(i)
            .map_err(|e| err(archive, format!("entry {i}: {e}")))?;
        let name = entry.name().to_string();
        if entry.is_dir() {
            continue;
        }
        if entry.enclosed_name().is_none()
            || name.contains('\\')
            || name
                .split('/')
                .any(|s| s == ".." || s.is_empty() || s == RAW)
        {
            return Err(entry_err(&name, "the entry's path leaves the pack".into()));
        }
        total = total.saturating_add(entry.size());
        if total > MAX_UNPACKED_BYTES {
            return Err(entry_err(
                &name,
                format!("the pack unpacks to more than {MAX_UNPACKED_BYTES} bytes"),
            ));
        }
        names.push((i, name));
    }
    if zip.index_for_name("manifest.cbor").is_none() {
        return Err(err(archive, "no `manifest.cbor`: not a greentic pack"));
    }
    crate::private_dir::create(dest).map_err(|e| err(dest, e.to_string()))?;
    // Every entry streamed to disk, its BLAKE3 taken on the way.
    let raw = dest.join(RAW);
    let mut hashes: BTreeMap<String, String> = BTreeMap::new();
    for (i, name) in &names {
        let mut entry = zip
            .by_index(*i)
            .map_err(|e| entry_err(name, format!("cannot read: {e}")))?;
        let declared = entry.size();
        let path = raw.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| err(parent, format!("cannot create: {e}")))?;
        }
        let out =
            std::fs::File::create(&path).map_err(|e| err(&path, format!("cannot write: {e}")))?;
        let mut sink = HashingWriter {
            out: std::io::BufWriter::new(out),
            hasher: blake3::Hasher::new(),
        };
        // The declared size may lie: read at most one byte more than it.
        let copied = std::io::copy(&mut entry.by_ref().take(declared + 1), &mut sink)
            .map_err(|e| entry_err(name, format!("cannot read: {e}")))?;
        std::io::Write::flush(&mut sink.out)
            .map_err(|e| err(&path, format!("cannot write: {e}")))?;
        if copied != declared {
            return Err(entry_err(
                name,
                "its size does not match the archive's directory".into(),
            ));
        }
        hashes.insert(name.clone(), sink.hasher.finalize().to_hex().to_string());
    }
    let read_small = |name: &str| -> Result<Vec<u8>, PackError> {
        let path = raw.join(name);
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if len > MAX_METADATA_BYTES {
            return Err(entry_err(
                name,
                format!("{len} bytes, more than the {MAX_METADATA_BYTES} read for it"),
            ));
        }
        std::fs::read(&path).map_err(|e| entry_err(name, format!("cannot read: {e}")))
    };
    if hashes.contains_key("sbom.json") {
        verify_sbom(&read_small("sbom.json")?, &hashes, &entry_err)?;
    }
    let manifest = greentic_types::decode_pack_manifest(&read_small("manifest.cbor")?)
        .map_err(|e| entry_err("manifest.cbor", format!("cannot decode: {e}")))?;

    let write = |rel: &str, data: &[u8]| -> Result<(), PackError> {
        let path = dest.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| err(&path, format!("cannot create: {e}")))?;
        }
        std::fs::write(&path, data).map_err(|e| err(&path, format!("cannot write: {e}")))
    };
    // Large files are moved into place, not read.
    let place = |name: &str| -> Result<(), PackError> {
        let path = dest.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| err(&path, format!("cannot create: {e}")))?;
        }
        std::fs::rename(raw.join(name), &path).map_err(|e| err(&path, format!("cannot write: {e}")))
    };
    let mut flows = Vec::new();
    for entry in &manifest.flows {
        let id = entry.id.to_string();
        let rel = format!("flows/{id}/flow.ygtc");
        if hashes.contains_key(&rel) {
            write(&rel, &read_small(&rel)?)?;
            for sidecar in [".resolve.json", ".resolve.summary.json"] {
                let name = format!("{rel}{sidecar}");
                if hashes.contains_key(&name) {
                    write(&name, &read_small(&name)?)?;
                }
            }
        } else {
            write(&rel, ygtc_from_compiled(&entry.flow).as_bytes())?;
        }
        flows.push(json!({"id": id, "file": rel, "entrypoints": entry.entrypoints}));
    }
    let mut components = Vec::new();
    for name in hashes.keys() {
        if name.starts_with("assets/") {
            place(name)?;
        } else if let Some(file) = name.strip_prefix("components/") {
            if let Some(stem) = file.strip_suffix(".manifest.cbor") {
                let doc = runner_core::cbor_to_json(&read_small(name)?)
                    .map_err(|e| entry_err(name, format!("not a component manifest: {e}")))?;
                write(
                    &format!("components/{stem}.manifest.json"),
                    doc.to_string().as_bytes(),
                )?;
            } else {
                place(name)?;
                if let Some(id) = file.strip_suffix(".wasm").filter(|id| !id.contains('/')) {
                    components.push(json!({"id": id, "wasm": name}));
                }
            }
        }
    }
    std::fs::remove_dir_all(&raw).map_err(|e| err(&raw, format!("cannot remove: {e}")))?;
    let pack_yaml = json!({
        "pack_id": manifest.pack_id.to_string(),
        "version": manifest.version.to_string(),
        "flows": flows,
        "components": components,
    });
    let text = serde_yaml::to_string(&pack_yaml).expect("JSON values serialise as YAML");
    write(
        "pack.yaml",
        format!(
            "# Unpacked from {} by the greentic runner.\n{text}",
            archive.display()
        )
        .as_bytes(),
    )
}

/// A writer that hashes what passes through it.
struct HashingWriter<W> {
    out: W,
    hasher: blake3::Hasher,
}

impl<W: std::io::Write> std::io::Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Checks every file `sbom.json` lists against the BLAKE3 `hashes` of the
/// archive's entries.
fn verify_sbom(
    sbom: &[u8],
    hashes: &BTreeMap<String, String>,
    entry_err: &dyn Fn(&str, String) -> PackError,
) -> Result<(), PackError> {
    let doc: Value = serde_json::from_slice(sbom)
        .map_err(|e| entry_err("sbom.json", format!("not JSON: {e}")))?;
    for item in doc["files"].as_array().into_iter().flatten() {
        let (Some(path), Some(expected)) = (item["path"].as_str(), item["hash_blake3"].as_str())
        else {
            continue;
        };
        let Some(actual) = hashes.get(path) else {
            return Err(entry_err(
                path,
                "listed in sbom.json but missing from the archive".into(),
            ));
        };
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(entry_err(
                path,
                format!(
                    "BLAKE3 {actual} does not match sbom.json's {expected}: the pack was altered"
                ),
            ));
        }
    }
    Ok(())
}

/// A flow packc compiled (`manifest.cbor`), written back as YGTC: nodes the
/// runner owns keep their op key; a component node becomes `component.exec`
/// with the component id packc resolved.
pub fn ygtc_from_compiled(flow: &greentic_types::Flow) -> String {
    use greentic_types::flow::Routing;
    let mut nodes = Map::new();
    for (id, node) in &flow.nodes {
        let component = node.component.id.as_str();
        let mapping = node.input.mapping.clone();
        let mut body = Map::new();
        if runner_core::is_runner_op_key(component) {
            body.insert(component.to_string(), mapping);
        } else {
            // `component.exec: {component, operation?, input}` kept its whole
            // payload as the mapping; an op-keyed node's payload is the input.
            let authored_exec = mapping.as_object().is_some_and(|m| {
                m.contains_key("input")
                    && ["component", "component_ref", "operation", "op"]
                        .iter()
                        .any(|k| m.contains_key(*k))
            });
            let (operation, input) = if authored_exec {
                let op = mapping
                    .get("operation")
                    .or(mapping.get("op"))
                    .and_then(Value::as_str)
                    .map(str::to_string);
                (op, mapping["input"].clone())
            } else {
                (None, mapping)
            };
            let operation = operation.or_else(|| node.component.operation.clone());
            let mut exec = Map::new();
            exec.insert("component".into(), component.into());
            if let Some(op) = operation {
                exec.insert("operation".into(), op.into());
            }
            exec.insert("input".into(), input);
            body.insert("component.exec".into(), Value::Object(exec));
        }
        let routing = match &node.routing {
            Routing::Next { node_id } => json!([{ "to": node_id.to_string() }]),
            Routing::End => json!("out"),
            Routing::Reply => json!("reply"),
            Routing::Branch { on_status, default } => {
                let mut routes: Vec<Value> = on_status
                    .iter()
                    .map(|(status, to)| json!({"status": status, "to": to.to_string()}))
                    .collect();
                routes.push(match default {
                    Some(to) => json!({"to": to.to_string()}),
                    None => json!({"out": true}),
                });
                Value::Array(routes)
            }
            Routing::Custom(raw) => raw.clone(),
        };
        body.insert("routing".into(), routing);
        nodes.insert(id.to_string(), Value::Object(body));
    }
    let mut doc = Map::new();
    doc.insert("id".into(), flow.id.to_string().into());
    if let Ok(Value::String(kind)) = serde_json::to_value(flow.kind) {
        doc.insert("type".into(), kind.into());
    }
    if let Some(start) = flow.entrypoints.get("default").and_then(Value::as_str) {
        doc.insert("start".into(), start.into());
    }
    if !flow.metadata.extra.is_null() {
        doc.insert("parameters".into(), flow.metadata.extra.clone());
    }
    doc.insert("nodes".into(), Value::Object(nodes));
    serde_yaml::to_string(&Value::Object(doc)).expect("JSON values serialise as YAML")
}
