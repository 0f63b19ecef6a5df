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
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod archive;
mod bundle;
mod compiled;
mod error;
mod signature;

pub use archive::{MAX_ENTRIES, MAX_METADATA_BYTES, MAX_UNPACKED_BYTES, unpack};
pub use bundle::{Bundle, TenantApp};
pub use compiled::ygtc_from_compiled;
pub use error::PackError;
use error::err;
pub use signature::{Seal, TrustedKey, seal_of};

/// The signed manifest an unpacked archive keeps (a pack directory of
/// sources has none).
pub const SIGNED_MANIFEST: &str = "manifest.cbor";

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
    /// The providers it declares (`greentic.provider-extension.v1`).
    pub providers: Vec<PackProvider>,
}

/// A provider a pack declares: its type and the component implementing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackProvider {
    /// `provider_type` (`messaging.telegram.bot`, …).
    pub provider_type: String,
    /// The component file.
    pub component: PathBuf,
}

/// `pack.yaml`: the fields the runner reads (others are packc's).
#[derive(Debug, Deserialize)]
struct PackYaml {
    pack_id: String,
    #[serde(default)]
    flows: Vec<PackYamlFlow>,
    #[serde(default)]
    components: Vec<PackYamlComponent>,
    /// As an unpacked archive lists them.
    #[serde(default)]
    providers: Vec<PackYamlProvider>,
    /// A source pack's extensions (its provider extension is read).
    #[serde(default)]
    extensions: BTreeMap<String, greentic_types::ExtensionRef>,
}

#[derive(Debug, Deserialize)]
struct PackYamlProvider {
    provider_type: String,
    component: String,
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
        let components: BTreeMap<String, PathBuf> = doc
            .components
            .into_iter()
            .map(|c| (c.id, root.join(c.wasm)))
            .collect();
        let declared = doc
            .extensions
            .get(greentic_types::PROVIDER_EXTENSION_ID)
            .and_then(|e| e.inline.as_ref())
            .and_then(|inline| inline.as_provider_inline())
            .map(|inline| {
                inline
                    .providers
                    .iter()
                    .map(|p| (p.provider_type.clone(), p.runtime.component_ref.clone()))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        let mut providers = Vec::new();
        for (provider_type, component) in doc
            .providers
            .into_iter()
            .map(|p| (p.provider_type, p.component))
            .chain(declared)
        {
            let file = components
                .get(&component)
                .cloned()
                .unwrap_or_else(|| root.join("components").join(format!("{component}.wasm")));
            if !file.is_file() {
                return Err(err(
                    &file,
                    format!(
                        "provider `{provider_type}` names component `{component}`, which the pack does not hold"
                    ),
                ));
            }
            providers.push(PackProvider {
                provider_type,
                component: file,
            });
        }
        Ok(Pack {
            root: root.to_path_buf(),
            pack_id: doc.pack_id,
            flows,
            components,
            providers,
        })
    }

    /// Opens a pack directory or a `.gtpack` archive (unpacked under `cache`).
    pub fn open(path: &Path, cache: &Path) -> Result<Pack, PackError> {
        if path.is_dir() {
            Pack::open_dir(path)
        } else {
            Pack::open_dir(&unpack(path, cache)?)
        }
    }

    /// Who signed this pack, as far as `keys` tell: the archive's
    /// `manifest.cbor` checked against them; a pack directory of sources
    /// (no signed manifest) is [`Seal::Unsigned`].
    pub fn seal(&self, keys: &[TrustedKey]) -> Result<Seal, PackError> {
        let file = self.root.join(SIGNED_MANIFEST);
        match std::fs::read(&file) {
            Ok(bytes) => seal_of(&file, &bytes, keys),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Seal::Unsigned),
            Err(e) => Err(err(&file, format!("cannot read: {e}"))),
        }
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
    top_level_text(file, "id")
}

/// The top-level `type` of a flow file (`messaging`, `events`, …), if it has one.
pub fn flow_type_of(file: &Path) -> Option<String> {
    top_level_text(file, "type")
}

fn top_level_text(file: &Path, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).ok()?;
    doc.get(key)?.as_str().map(str::to_string)
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
