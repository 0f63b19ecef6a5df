//! Reading flows and finding their components on disk.
//!
//! - [`load_flow`] reads a flow file with its resolve sidecars;
//! - [`load_flow_set`] adds the flows it reaches with `flow.call` / `flow.goto`;
//! - [`ComponentResolver`] turns a node's component reference (and the
//!   resolve summary's `component_id` / `digest`) into a `.wasm` file, the way
//!   greentic-pack's packc resolves them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use greentic_registry::{Kind, OciRef, Registry, RegistryError};

use runner_core::FlowSource;
use sha2::{Digest, Sha256};
use thiserror::Error;

/// Reading a flow or finding a component failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The flow file (or its sidecar) could not be read.
    #[error("cannot read `{path}`")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A component reference names no existing file.
    #[error("{flow}: node `{node}`: component `{reference}` not found (looked for {})", looked.iter().map(|p| format!("`{}`", p.display())).collect::<Vec<_>>().join(", "))]
    ComponentNotFound {
        /// The flow file.
        flow: String,
        /// The first node using the component.
        node: String,
        /// The reference as written.
        reference: String,
        /// Every path tried.
        looked: Vec<PathBuf>,
    },
    /// A component's bytes do not have the digest the resolve summary pins.
    #[error("{flow}: node `{node}`: component `{}` has digest {actual}, but the resolve summary pins {expected}", path.display())]
    DigestMismatch {
        /// The flow file.
        flow: String,
        /// The node.
        node: String,
        /// The component file.
        path: PathBuf,
        /// `sha256:<hex>` from the summary.
        expected: String,
        /// `sha256:<hex>` of the file.
        actual: String,
    },
    /// A component named by a registry reference could not be fetched.
    #[error("{flow}: node `{node}`")]
    Registry {
        /// The flow file.
        flow: String,
        /// The first node using the component.
        node: String,
        /// Why not.
        #[source]
        source: Box<RegistryError>,
    },
    /// A flow reached by `flow.call` / `flow.goto` could not be found or loaded.
    #[error("{flow}: {message}")]
    Flow {
        /// The calling flow's file.
        flow: String,
        /// What went wrong.
        message: String,
    },
}

/// `<flow file>.resolve.json`, the greentic-flow resolve sidecar.
pub fn sidecar_path(flow: &Path) -> PathBuf {
    with_suffix(flow, ".resolve.json")
}

/// `<flow file>.resolve.summary.json`, packc's resolved sidecar.
pub fn summary_sidecar_path(flow: &Path) -> PathBuf {
    with_suffix(flow, ".resolve.summary.json")
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn read(path: &Path) -> Result<String, SourceError> {
    std::fs::read_to_string(path).map_err(|source| SourceError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn read_if_present(path: &Path) -> Result<Option<String>, SourceError> {
    if path.is_file() {
        read(path).map(Some)
    } else {
        Ok(None)
    }
}

/// Reads a flow file and, when present, its resolve sidecars. The flow's name
/// in messages is the path as given.
pub fn load_flow(path: &Path) -> Result<FlowSource, SourceError> {
    Ok(FlowSource {
        name: path.display().to_string(),
        yaml: read(path)?,
        resolve_json: read_if_present(&sidecar_path(path))?,
        resolve_summary_json: read_if_present(&summary_sidecar_path(path))?,
        strict_templating: None,
    })
}

/// A flow and the flows it reaches with `flow.call` / `flow.goto`.
#[derive(Debug, Clone)]
pub struct FlowSet<P> {
    /// The flow itself: file, source, plan.
    pub main: (PathBuf, FlowSource, P),
    /// Flows it reaches (transitively), sorted by flow id.
    pub library: Vec<(PathBuf, FlowSource, P)>,
    /// Called flow ids that no file provides (the call fails if it runs).
    pub missing: Vec<String>,
}

impl<P> FlowSet<P> {
    /// Every flow of the set, the main one first.
    pub fn flows(&self) -> impl Iterator<Item = &(PathBuf, FlowSource, P)> {
        std::iter::once(&self.main).chain(self.library.iter())
    }
}

/// Loads the flow at `path` and, following the literal flow ids its plan
/// lists as `calls`, the flows it reaches in the same directory (a flow id
/// `x` is the file `x.ygtc` / `x.yaml` / `x.yml`, else the file whose `id:`
/// is `x`). `plan` plans one flow; `calls` lists a plan's called ids and
/// `id` gives its flow id. `templating` overrides every flow's templating.
pub fn load_flow_set<P, E>(
    path: &Path,
    strict_templating: Option<bool>,
    mut plan: impl FnMut(&FlowSource) -> Result<P, E>,
    calls: impl Fn(&P) -> Vec<String>,
    id: impl Fn(&P) -> String,
) -> Result<FlowSet<P>, E>
where
    E: From<SourceError>,
{
    let mut source = load_flow(path)?;
    source.strict_templating = strict_templating;
    let main_plan = plan(&source)?;
    let mut seen: Vec<String> = vec![id(&main_plan)];
    let mut queue: Vec<String> = calls(&main_plan);
    let main = (path.to_path_buf(), source, main_plan);
    let mut library = Vec::new();
    let mut missing = Vec::new();
    let dir = path.parent().unwrap_or(Path::new("."));
    // In a pack, its flow list says where each flow is.
    let pack = crate::pack::Pack::enclosing(path);
    while let Some(callee) = queue.pop() {
        if seen.contains(&callee) {
            continue;
        }
        seen.push(callee.clone());
        let in_pack = pack
            .as_ref()
            .and_then(|p| p.flow(&callee).ok())
            .map(|f| f.file.clone());
        let Some(file) = in_pack.or_else(|| find_flow_file(dir, &callee)) else {
            missing.push(callee);
            continue;
        };
        let mut callee_source = load_flow(&file)?;
        callee_source.strict_templating = strict_templating;
        let callee_plan = plan(&callee_source)?;
        if id(&callee_plan) != callee {
            return Err(SourceError::Flow {
                flow: path.display().to_string(),
                message: format!(
                    "`{}` was taken for flow `{callee}` but its id is `{}`",
                    file.display(),
                    id(&callee_plan)
                ),
            }
            .into());
        }
        queue.extend(calls(&callee_plan));
        library.push((file, callee_source, callee_plan));
    }
    // By flow id: the order slots are laid out in (the runner sorts the same way).
    library.sort_by_key(|(_, _, plan)| id(plan));
    Ok(FlowSet {
        main,
        library,
        missing,
    })
}

/// Flow file extensions, in lookup order.
const FLOW_EXTENSIONS: [&str; 3] = ["ygtc", "yaml", "yml"];

/// The flow file for flow id `id` in `dir`.
fn find_flow_file(dir: &Path, id: &str) -> Option<PathBuf> {
    let by_name = FLOW_EXTENSIONS
        .iter()
        .map(|ext| dir.join(format!("{id}.{ext}")))
        .find(|p| p.is_file());
    if by_name.is_some() {
        return by_name;
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| FLOW_EXTENSIONS.contains(&e))
        })
        .collect();
    files.sort();
    files.into_iter().find(|p| {
        std::fs::read_to_string(p).is_ok_and(|text| {
            text.lines().any(|line| {
                line.strip_prefix("id:")
                    .map(|v| v.trim().trim_matches(['"', '\'']))
                    == Some(id)
            })
        })
    })
}

/// What the resolver needs to know of a node's component.
#[derive(Debug, Clone, Copy)]
pub struct ComponentRef<'a> {
    /// The first node using the component (for messages).
    pub node: &'a str,
    /// The reference as planned: bare name, path, or a sidecar source reference.
    pub reference: &'a str,
    /// The resolve summary's `component_id`.
    pub component_id: Option<&'a str>,
    /// The resolve summary's `digest` (`sha256:<hex>`).
    pub digest: Option<&'a str>,
}

/// Where a component was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The `.wasm` file.
    pub path: PathBuf,
    /// Whether it is the stand-in (`--stub-missing`), not the component itself.
    pub stub: bool,
}

/// Finds component files for the references in a flow.
///
/// Tried in order, the first existing file wins:
/// 1. a reference that ends in `.wasm` or contains a path separator (and no
///    `scheme://`): that path, relative to the flow file's directory;
/// 2. the resolve summary's `component_id` `c`: `<dir>/c.wasm` in each search directory;
/// 3. a bare name `n`: `<dir>/n.wasm`;
/// 4. the last segment of a path or `oci://` / `repo://` / `store://`
///    reference (without tag, digest or `.wasm`): `<dir>/<segment>.wasm`;
/// 5. an `oci://` reference: fetched from its registry (with
///    [`ComponentResolver::with_registry`]). A lock file's pin goes first,
///    before any local file.
///
/// A pinned `digest` is then checked against the file's bytes.
#[derive(Debug, Clone)]
pub struct ComponentResolver {
    search_dirs: Vec<PathBuf>,
    stub: Option<PathBuf>,
    registry: Option<Arc<Registry>>,
}

impl ComponentResolver {
    /// A resolver over `search_dirs`, tried in order.
    pub fn new(search_dirs: Vec<PathBuf>) -> Self {
        ComponentResolver {
            search_dirs,
            stub: None,
            registry: None,
        }
    }

    /// Fetches `oci://` components that no local file provides (and those a
    /// lock file pins) from their registry.
    pub fn with_registry(mut self, registry: Option<Arc<Registry>>) -> Self {
        self.registry = registry;
        self
    }

    /// Resolves components that cannot be found to `stub` instead of failing.
    pub fn with_stub(mut self, stub: Option<PathBuf>) -> Self {
        self.stub = stub;
        self
    }

    /// The directories bare names are looked up in.
    pub fn search_dirs(&self) -> &[PathBuf] {
        &self.search_dirs
    }

    /// Resolves a component used by the flow at `flow_path`.
    pub fn resolve(
        &self,
        flow_path: &Path,
        component: ComponentRef<'_>,
    ) -> Result<Resolved, SourceError> {
        let reference = component.reference;
        let (local, pack) = self.local_candidates(flow_path, component);
        let oci = self.registry.as_ref().filter(|_| OciRef::is_oci(reference));
        // What the flow names itself (a path, its pack's component: what the
        // pack's signer vouched for) first, then a lock file's pin, then
        // files of the same name, then the registry.
        let found = match pack.iter().find(|p| p.is_file()) {
            Some(path) => Some(path.clone()),
            None => match oci {
                Some(registry) if registry.pinned(reference) => {
                    Some(self.fetch(registry, flow_path, component)?)
                }
                _ => match local.iter().find(|p| p.is_file()) {
                    Some(path) => Some(path.clone()),
                    // With a stand-in, a component the registry cannot give
                    // (offline, unreachable, unknown) is stood in for, as a
                    // missing file is.
                    None => match oci.map(|r| self.fetch(r, flow_path, component)) {
                        Some(Ok(path)) => Some(path),
                        Some(Err(_)) if self.stub.is_some() => None,
                        Some(Err(e)) => return Err(e),
                        None => None,
                    },
                },
            },
        };
        let Some(path) = found else {
            if let Some(stub) = &self.stub {
                return Ok(Resolved {
                    path: stub.clone(),
                    stub: true,
                });
            }
            return Err(SourceError::ComponentNotFound {
                flow: flow_path.display().to_string(),
                node: component.node.to_string(),
                reference: reference.to_string(),
                looked: pack.into_iter().chain(local).collect(),
            });
        };
        Self::checked(flow_path, component, path)
    }

    /// Whether the pack enclosing `flow_path` holds the component itself
    /// (then no registry is asked for it).
    pub fn in_pack(&self, flow_path: &Path, component: ComponentRef<'_>) -> bool {
        let (_, pack) = self.local_candidates(flow_path, component);
        pack.iter().any(|p| p.is_file())
    }

    /// Files that may be the component: the search directories'; and
    /// apart, those the flow names itself (a path as written, its pack's).
    fn local_candidates(
        &self,
        flow_path: &Path,
        component: ComponentRef<'_>,
    ) -> (Vec<PathBuf>, Vec<PathBuf>) {
        let reference = component.reference;
        let has_scheme = reference.contains("://");
        let is_path = !has_scheme
            && (reference.ends_with(".wasm")
                || reference.contains('/')
                || reference.contains('\\'));
        let mut names: Vec<String> = Vec::new();
        if let Some(id) = component.component_id {
            names.push(id.to_string());
        }
        if !is_path && !has_scheme {
            names.push(reference.to_string());
        }
        if let Some(segment) = last_segment(reference)
            && !names.contains(&segment)
        {
            names.push(segment);
        }
        let mut local: Vec<PathBuf> = Vec::new();
        let mut pack_files: Vec<PathBuf> = Vec::new();
        if is_path {
            let base = flow_path.parent().unwrap_or(Path::new("."));
            pack_files.push(base.join(reference));
        }
        if let Some(pack) = crate::pack::Pack::enclosing(flow_path) {
            for name in &names {
                pack_files.extend(pack.components.get(name).cloned());
                pack_files.push(pack.root.join("components").join(format!("{name}.wasm")));
            }
        }
        for name in &names {
            local.extend(
                self.search_dirs
                    .iter()
                    .map(|d| d.join(format!("{name}.wasm"))),
            );
        }
        (local, pack_files)
    }

    /// `path`, once its bytes have the digest the resolve summary pins.
    fn checked(
        flow_path: &Path,
        component: ComponentRef<'_>,
        path: PathBuf,
    ) -> Result<Resolved, SourceError> {
        if let Some(expected) = component.digest {
            let bytes = std::fs::read(&path).map_err(|source| SourceError::Read {
                path: path.clone(),
                source,
            })?;
            let actual = format!("sha256:{:x}", Sha256::digest(&bytes));
            if !actual.eq_ignore_ascii_case(expected) {
                return Err(SourceError::DigestMismatch {
                    flow: flow_path.display().to_string(),
                    node: component.node.to_string(),
                    path,
                    expected: expected.to_string(),
                    actual,
                });
            }
        }
        Ok(Resolved { path, stub: false })
    }

    fn fetch(
        &self,
        registry: &Registry,
        flow_path: &Path,
        component: ComponentRef<'_>,
    ) -> Result<PathBuf, SourceError> {
        OciRef::parse(component.reference)
            .and_then(|r| registry.fetch(&r, Kind::Component))
            .map(|fetched| fetched.path)
            .map_err(|source| SourceError::Registry {
                flow: flow_path.display().to_string(),
                node: component.node.to_string(),
                source: Box::new(source),
            })
    }
}

/// `oci://ghcr.io/org/templates:0.1@sha256:…` -> `templates`;
/// `../components/qa/qa.wasm` -> `qa`.
fn last_segment(reference: &str) -> Option<String> {
    let without_scheme = reference.split_once("://").map_or(reference, |(_, r)| r);
    let last = without_scheme.rsplit(['/', '\\']).next()?;
    let last = last.split('@').next()?;
    let last = last.split(':').next()?;
    let last = last.strip_suffix(".wasm").unwrap_or(last);
    (!last.is_empty()).then(|| last.to_string())
}

/// Every component reference of a set of flows, with the first node that
/// uses it, in first-use order (components are keyed by reference; flows of
/// one directory resolve a reference the same way).
pub fn distinct_components<'a, N: 'a>(
    nodes: impl Iterator<Item = (&'a Path, &'a N)>,
    reference: impl Fn(&N) -> &str,
) -> Vec<(&'a Path, &'a N)> {
    let mut seen: HashMap<String, ()> = HashMap::new();
    let mut out = Vec::new();
    for (flow, node) in nodes {
        let r = reference(node);
        if r.is_empty() || seen.insert(r.to_string(), ()).is_some() {
            continue;
        }
        out.push((flow, node));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_paths_relative_to_the_flow_and_names_over_dirs() {
        let tmp = std::env::temp_dir().join(format!("compose-source-{}", std::process::id()));
        let (flows, a, b) = (tmp.join("flows"), tmp.join("a"), tmp.join("b"));
        for d in [&flows, &a, &b] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(flows.join("local.wasm"), b"x").unwrap();
        std::fs::write(b.join("echo.wasm"), b"x").unwrap();
        std::fs::write(a.join("echo.wasm"), b"x").unwrap();
        let flow = flows.join("f.yaml");
        let r = ComponentResolver::new(vec![a.clone(), b.clone()]);
        let at = |reference| ComponentRef {
            node: "n",
            reference,
            component_id: None,
            digest: None,
        };
        assert_eq!(
            r.resolve(&flow, at("local.wasm")).unwrap().path,
            flows.join("local.wasm")
        );
        assert_eq!(
            r.resolve(&flow, at("echo")).unwrap().path,
            a.join("echo.wasm")
        );
        // Non-local sources fall back to the component id, then the last segment.
        assert_eq!(
            r.resolve(&flow, at("oci://ghcr.io/x/echo:1.0"))
                .unwrap()
                .path,
            a.join("echo.wasm")
        );
        let by_id = ComponentRef {
            component_id: Some("local"),
            ..at("repo://placeholder/none")
        };
        assert!(r.resolve(&flow, by_id).is_err());
        std::fs::write(b.join("ai.greentic.local.wasm"), b"y").unwrap();
        let by_id = ComponentRef {
            component_id: Some("ai.greentic.local"),
            ..at("../missing/local.wasm")
        };
        assert_eq!(
            r.resolve(&flow, by_id).unwrap().path,
            b.join("ai.greentic.local.wasm")
        );
        // A pinned digest is checked.
        let good = format!("sha256:{:x}", Sha256::digest(b"y"));
        let pinned = ComponentRef {
            digest: Some(&good),
            ..by_id
        };
        assert!(r.resolve(&flow, pinned).is_ok());
        let bad = format!("sha256:{}", "0".repeat(64));
        let err = r
            .resolve(
                &flow,
                ComponentRef {
                    digest: Some(&bad),
                    ..by_id
                },
            )
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("node `n`") && err.contains(&bad) && err.contains(&good),
            "{err}"
        );
        // With a stub, a missing component resolves to it.
        let stubbed = r.clone().with_stub(Some(b.join("echo.wasm")));
        assert_eq!(
            stubbed.resolve(&flow, at("ghost")).unwrap(),
            Resolved {
                path: b.join("echo.wasm"),
                stub: true
            }
        );
        let err = r.resolve(&flow, at("ghost")).unwrap_err().to_string();
        assert!(
            err.contains("node `n`: component `ghost` not found"),
            "{err}"
        );
        assert!(
            err.contains(&b.join("ghost.wasm").display().to_string()),
            "{err}"
        );
        std::fs::remove_dir_all(&tmp).unwrap();
    }

    #[test]
    fn reads_the_sidecar_when_present() {
        let tmp = std::env::temp_dir().join(format!("compose-sidecar-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).unwrap();
        let flow = tmp.join("f.ygtc");
        std::fs::write(&flow, "id: x").unwrap();
        assert_eq!(load_flow(&flow).unwrap().resolve_json, None);
        std::fs::write(tmp.join("f.ygtc.resolve.json"), "{}").unwrap();
        assert_eq!(
            load_flow(&flow).unwrap().resolve_json.as_deref(),
            Some("{}")
        );
        assert!(matches!(
            load_flow(&tmp.join("nope.yaml")),
            Err(SourceError::Read { .. })
        ));
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
