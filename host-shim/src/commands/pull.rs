//! `host-shim pull`: fetch the registry references of flows and packs into
//! the cache and pin them in a lock file, so later runs (`--lock FILE`,
//! `--offline`) need no registry and get exactly these bytes.

use std::path::{Path, PathBuf};

use clap::Args;
use greentic_registry::{Kind, Lock, OciRef, Registry, RegistryOptions};

use super::setup::pack_cache;
use crate::Failure;

/// `host-shim pull`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// Flow files, directories of flows, packs (`.gtpack` or directory) or
    /// `oci://` pack references: every `oci://` component their flows use
    /// (and the packs named by reference) is fetched. None: everything the
    /// lock file pins is fetched at its pinned digest.
    pub targets: Vec<PathBuf>,
    /// The lock file to write (references fetched now are pinned to the
    /// digest their tag has now; other pins are kept).
    #[arg(long, value_name = "FILE")]
    pub lock: Option<PathBuf>,
}

pub(super) fn pull(args: PullArgs) -> Result<(), Failure> {
    let invalid = |e: greentic_registry::RegistryError| Failure::Invalid(e.into());
    let mut lock = match &args.lock {
        Some(path) if path.exists() => Lock::read(path).map_err(invalid)?,
        _ => Lock::default(),
    };
    if args.targets.is_empty() {
        let Some(path) = &args.lock else {
            return Err(Failure::Invalid(anyhow::anyhow!(
                "give flows, packs or `oci://` pack references to pull, or --lock FILE to fetch what it pins"
            )));
        };
        return fetch_pinned(lock, path);
    }
    // Tags are asked of their registries afresh: pull is what moves pins.
    let registry = Registry::new(RegistryOptions::new(pack_cache().join("oci")));
    let mut pulled = 0;
    for target in &args.targets {
        let text = target.to_string_lossy();
        let local = if OciRef::is_oci(&text) {
            let reference = OciRef::parse(&text).map_err(invalid)?;
            let fetched = registry.fetch(&reference, Kind::Pack).map_err(invalid)?;
            report(&reference, &fetched);
            lock.pin(
                Kind::Pack,
                reference.as_str(),
                reference.name(),
                &fetched.digest,
            );
            pulled += 1;
            fetched.path
        } else {
            target.clone()
        };
        pulled += pull_components(&local, &registry, &mut lock)?;
    }
    if let Some(path) = &args.lock {
        lock.write(path).map_err(invalid)?;
        eprintln!(
            "host-shim: {} pins {} reference(s); run with --lock {} (and --offline to forbid fetching)",
            path.display(),
            lock.len(),
            path.display()
        );
    } else if pulled == 0 {
        eprintln!("host-shim: no `oci://` references to pull");
    }
    Ok(())
}

/// Fetches the `oci://` components the flows of `target` use that its pack
/// does not hold; returns how many.
fn pull_components(target: &Path, registry: &Registry, lock: &mut Lock) -> Result<usize, Failure> {
    let flows = compose::pack::Target::parse(target, &pack_cache())
        .and_then(|t| t.flow_files())
        .map_err(|e| Failure::Invalid(e.into()))?;
    let in_pack = compose::ComponentResolver::new(Vec::new());
    let mut pulled = 0;
    for flow in flows {
        let used = compose::component_references(&flow).map_err(|e| Failure::Invalid(e.into()))?;
        for (file, node) in used {
            let component = compose::ComponentRef {
                node: &node.id,
                reference: &node.component,
                component_id: node.component_id.as_deref(),
                digest: node.digest.as_deref(),
            };
            if !OciRef::is_oci(&node.component) || in_pack.in_pack(&file, component) {
                continue;
            }
            let named = |e: greentic_registry::RegistryError| {
                Failure::Invalid(anyhow::Error::new(e).context(format!(
                    "{}: node `{}`",
                    file.display(),
                    node.id
                )))
            };
            let reference = OciRef::parse(&node.component).map_err(named)?;
            let fetched = registry.fetch(&reference, Kind::Component).map_err(named)?;
            report(&reference, &fetched);
            lock.pin(
                Kind::Component,
                reference.as_str(),
                reference.name(),
                &fetched.digest,
            );
            pulled += 1;
        }
    }
    Ok(pulled)
}

/// Fetches every reference `lock` pins, by its digest.
fn fetch_pinned(lock: Lock, path: &Path) -> Result<(), Failure> {
    let pinned: Vec<(Kind, String)> = lock.entries().map(|(k, r)| (k, r.to_string())).collect();
    let mut options = RegistryOptions::new(pack_cache().join("oci"));
    options.lock = lock;
    let registry = Registry::new(options);
    for (kind, text) in pinned {
        let reference = OciRef::parse(&text).map_err(|e| {
            Failure::Invalid(
                anyhow::Error::new(e).context(format!("lock file `{}`", path.display())),
            )
        })?;
        let fetched = registry
            .fetch(&reference, kind)
            .map_err(|e| Failure::Invalid(e.into()))?;
        report(&reference, &fetched);
    }
    Ok(())
}

fn report(reference: &OciRef, fetched: &greentic_registry::Fetched) {
    println!(
        "{} {} {}",
        reference,
        fetched.digest,
        if fetched.from_network {
            "fetched"
        } else {
            "cached"
        }
    );
}
