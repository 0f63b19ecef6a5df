//! `host-shim compile`.

use std::path::{Path, PathBuf};

use super::setup::{Sources, target};
use crate::engine::{Filled, OnMiss};
use crate::{Failure, Host, HostOptions};
use clap::Args;

/// `host-shim compile`.
#[derive(Debug, Args)]
pub struct CompileArgs {
    /// Flow files, directories of flows, packs (`pack.yaml` directories or
    /// `.gtpack` archives) and component `.wasm` files.
    #[arg(required = true, value_name = "FLOW|DIR|PACK|WASM")]
    pub targets: Vec<PathBuf>,
    /// Directory to look up bare component names in; repeatable.
    #[arg(short = 'c', long = "components", value_name = "DIR")]
    pub components: Vec<PathBuf>,
    /// Print nothing on stderr but errors.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `compile`: fills the cache with the optimised artifacts of every component
/// the targets use, and the runner's when the build's does not fit.
pub(super) fn compile(args: CompileArgs) -> Result<(), Failure> {
    let host = Host::new(HostOptions {
        component_dirs: args.components.clone(),
        registry: Some(Sources::listing().registry),
        on_miss: OnMiss::Optimize,
        quiet: true,
        ..HostOptions::default()
    })
    .map_err(Failure::Invalid)?;
    let runner = std::fs::canonicalize(crate::BUILT_RUNNER)
        .unwrap_or_else(|_| PathBuf::from(crate::BUILT_RUNNER));
    let mut components = vec![runner.clone()];
    let mut failed = 0usize;
    for target in &args.targets {
        match compile_target_components(&host, target) {
            Ok(found) => components.extend(found),
            Err(failure) => {
                failed += 1;
                eprintln!("error: {}: {failure}", target.display());
            }
        }
    }
    // One entry per file, however it was named.
    let mut components: Vec<PathBuf> = components
        .into_iter()
        .map(|c| std::fs::canonicalize(&c).unwrap_or(c))
        .collect();
    components.sort();
    components.dedup();
    let (mut compiled, mut there) = (0usize, 0usize);
    for component in &components {
        // The runner has an engine (and artifacts) of its own.
        let cache = if *component == runner {
            host.runner_cache()
        } else {
            host.component_cache()
        };
        match cache.fill(component) {
            Ok(Filled::Compiled) => {
                compiled += 1;
                if !args.quiet {
                    eprintln!("compiled  {}", component.display());
                }
            }
            Ok(Filled::AlreadyThere) => there += 1,
            Ok(Filled::InProgress) => {
                if !args.quiet {
                    eprintln!(
                        "skipped   {} (another process compiles it)",
                        component.display()
                    );
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: {e:#}");
            }
        }
    }
    if !args.quiet {
        eprintln!(
            "{} components: {compiled} compiled, {there} already compiled; cache {}",
            components.len(),
            host.component_cache()
                .dir()
                .map_or("-".into(), |d| d.display().to_string())
        );
    }
    if failed > 0 {
        return Err(Failure::Invalid(anyhow::anyhow!(
            "{failed} targets or components could not be compiled"
        )));
    }
    Ok(())
}

/// The component files `target` (a `.wasm`, a flow, a directory of flows or
/// a pack) uses.
pub(super) fn compile_target_components(
    host: &Host,
    target: &Path,
) -> Result<Vec<PathBuf>, Failure> {
    if target.extension().is_some_and(|e| e == "wasm") {
        return Ok(vec![target.to_path_buf()]);
    }
    // Compiling runs nothing of a pack: no signature policy here.
    let flows = self::target(target, &Sources::listing())?
        .flow_files()
        .map_err(|e| Failure::Invalid(e.into()))?;
    let mut components = Vec::new();
    for flow in flows {
        components.extend(host.flow_components(&flow)?);
    }
    Ok(components)
}
