//! Reading flows and finding their components on disk.

use std::path::{Path, PathBuf};

use runner_core::FlowSource;
use thiserror::Error;

/// Reading a flow or finding a component failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The flow file (or its sidecar) could not be read.
    #[error("cannot read `{path}`: {source}")]
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
}

/// `<flow file>.resolve.json`, the greentic-flow resolve sidecar.
pub fn sidecar_path(flow: &Path) -> PathBuf {
    let mut name = flow.as_os_str().to_owned();
    name.push(".resolve.json");
    PathBuf::from(name)
}

/// Reads a flow file and, when present, its resolve sidecar. The flow's name in
/// messages is the path as given.
pub fn load_flow(path: &Path) -> Result<FlowSource, SourceError> {
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|source| SourceError::Read {
            path: p.to_path_buf(),
            source,
        })
    };
    let yaml = read(path)?;
    let sidecar = sidecar_path(path);
    let resolve_json = if sidecar.is_file() {
        Some(read(&sidecar)?)
    } else {
        None
    };
    Ok(FlowSource {
        name: path.display().to_string(),
        yaml,
        resolve_json,
    })
}

/// Finds component files for the references in a flow.
///
/// A reference that ends in `.wasm` or contains a path separator is a path,
/// relative to the flow file's directory. A bare name `n` is looked up as
/// `<dir>/n.wasm` in each search directory, in order.
#[derive(Debug, Clone)]
pub struct ComponentResolver {
    search_dirs: Vec<PathBuf>,
}

impl ComponentResolver {
    /// A resolver over `search_dirs`, tried in order.
    pub fn new(search_dirs: Vec<PathBuf>) -> Self {
        ComponentResolver { search_dirs }
    }

    /// The directories bare names are looked up in.
    pub fn search_dirs(&self) -> &[PathBuf] {
        &self.search_dirs
    }

    /// Resolves `reference`, used first by `node` of the flow at `flow_path`.
    pub fn resolve(
        &self,
        flow_path: &Path,
        node: &str,
        reference: &str,
    ) -> Result<PathBuf, SourceError> {
        let is_path =
            reference.ends_with(".wasm") || reference.contains('/') || reference.contains('\\');
        let candidates: Vec<PathBuf> = if is_path {
            let base = flow_path.parent().unwrap_or(Path::new("."));
            vec![base.join(reference)]
        } else {
            self.search_dirs
                .iter()
                .map(|d| d.join(format!("{reference}.wasm")))
                .collect()
        };
        candidates
            .iter()
            .find(|p| p.is_file())
            .cloned()
            .ok_or_else(|| SourceError::ComponentNotFound {
                flow: flow_path.display().to_string(),
                node: node.to_string(),
                reference: reference.to_string(),
                looked: candidates,
            })
    }
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
        assert_eq!(
            r.resolve(&flow, "n", "local.wasm").unwrap(),
            flows.join("local.wasm")
        );
        assert_eq!(r.resolve(&flow, "n", "echo").unwrap(), a.join("echo.wasm"));
        let err = r.resolve(&flow, "n", "ghost").unwrap_err().to_string();
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
