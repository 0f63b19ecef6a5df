//! The cache of compiled components: artifacts keyed by engine and component
//! hash, the build's precompiled runner, baseline (Winch) compiles on a miss.

use sha2::{Digest, Sha256};
use std::hash::Hash;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;
use wasmtime::Engine;
use wasmtime::Result;
use wasmtime::component::Component;
use wasmtime::error::Context;

use super::artifacts::{FillLock, ShaHasher, check_component_binary, hex, write_atomically};
use super::build::start_epoch_ticker;

/// How a component with no usable compiled artifact is compiled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnMiss {
    /// Cranelift: optimised code, written to the cache. The fastest code,
    /// the slowest first use (most of a second for a large component); for
    /// long-lived processes (`serve`) and for filling the cache (`compile`).
    Optimize,
    /// Winch, the baseline compiler, for this process only: a first run does
    /// not wait for Cranelift. The component is remembered
    /// ([`ComponentCache::take_baseline_compiled`]) so that the caller can
    /// have its optimised artifact made for later runs. A component Winch
    /// cannot compile is compiled by Cranelift.
    Baseline,
}

/// Compiles components, reusing artifacts from earlier processes.
///
/// An artifact is keyed by the engine's compatibility hash (Wasmtime version and
/// settings) and the SHA-256 of the component bytes, so a changed component or
/// engine never loads a stale artifact.
pub struct ComponentCache {
    engine: Engine,
    /// The Winch engine, made on first use (only [`OnMiss::Baseline`] needs it).
    baseline: OnceLock<Option<Engine>>,
    dir: Option<PathBuf>,
    precompiled: Vec<Precompiled>,
    on_miss: OnMiss,
    baseline_compiled: Mutex<Vec<PathBuf>>,
    compiled: AtomicUsize,
    quiet: bool,
}

/// An artifact compiled ahead of time (by host-shim's build) for the component
/// whose bytes have the SHA-256 `source_sha256`. It is used for exactly those
/// bytes, whether or not a cache directory is in use.
#[derive(Clone, Debug)]
pub struct Precompiled {
    /// Lowercase hex SHA-256 of the component the artifact was compiled from.
    pub source_sha256: String,
    /// The `Engine::precompile_component` output.
    pub artifact: PathBuf,
}

impl Precompiled {
    /// The runner the build compiled, precompiled by the build for
    /// [`greentic_runner_engine::runner_config`].
    pub fn built_runner() -> Precompiled {
        Precompiled {
            source_sha256: crate::BUILT_RUNNER_SHA256.to_string(),
            artifact: PathBuf::from(crate::BUILT_RUNNER_CWASM),
        }
    }
}

/// What [`ComponentCache::fill`] did for one component.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filled {
    /// Its optimised artifact was already there (or the build's).
    AlreadyThere,
    /// Compiled now and written.
    Compiled,
    /// Another process is compiling it.
    InProgress,
}

impl ComponentCache {
    /// A cache in `dir`; `None` compiles every time.
    pub fn new(engine: Engine, dir: Option<PathBuf>, quiet: bool) -> Self {
        ComponentCache {
            engine,
            baseline: OnceLock::new(),
            dir,
            precompiled: Vec::new(),
            on_miss: OnMiss::Optimize,
            baseline_compiled: Mutex::new(Vec::new()),
            compiled: AtomicUsize::new(0),
            quiet,
        }
    }

    /// Also uses `artifact` for the component it was compiled from.
    pub fn with_precompiled(mut self, artifact: Precompiled) -> Self {
        self.precompiled.push(artifact);
        self
    }

    /// How components missing from the cache are compiled (default
    /// [`OnMiss::Optimize`]).
    pub fn on_miss(mut self, on_miss: OnMiss) -> Self {
        self.on_miss = on_miss;
        self
    }

    /// The default cache directory: `$GREENTIC_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/greentic-runner`, else `~/.cache/greentic-runner`.
    pub fn default_dir() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("GREENTIC_CACHE_DIR") {
            return Some(PathBuf::from(dir));
        }
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(base.join("greentic-runner"))
    }

    /// The engine optimised components are compiled for.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The cache directory, if artifacts are kept.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// How many components this cache compiled (either compiler) so far.
    pub fn compiled_count(&self) -> usize {
        self.compiled.load(Ordering::Relaxed)
    }

    /// The component files compiled by Winch since the last call, whose
    /// optimised artifacts the cache directory lacks.
    pub fn take_baseline_compiled(&self) -> Vec<PathBuf> {
        std::mem::take(&mut self.baseline_compiled.lock().expect("not poisoned"))
    }

    /// Loads the component at `path`, compiling it on a cache miss.
    pub fn load(&self, path: &Path) -> Result<Component> {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))?;
        self.load_from(&path.display().to_string(), &bytes, Some(path))
    }

    /// Loads a component from its bytes; `name` is used in messages.
    pub fn load_bytes(&self, name: &str, bytes: &[u8]) -> Result<Component> {
        self.load_from(name, bytes, None)
    }

    fn load_from(&self, name: &str, bytes: &[u8], path: Option<&Path>) -> Result<Component> {
        check_component_binary(name, bytes)?;
        if let Some(component) = self.load_precompiled(name, bytes) {
            return Ok(component);
        }
        let artifact = self.artifact_path(bytes);
        if let Some(artifact) = &artifact
            && let Some(component) = self.load_artifact(artifact)
        {
            return Ok(component);
        }
        if self.on_miss == OnMiss::Baseline
            && let Some(component) = self.compile_baseline(name, bytes)
        {
            if let (Some(path), Some(_)) = (path, &artifact) {
                self.baseline_compiled
                    .lock()
                    .expect("not poisoned")
                    .push(path.to_path_buf());
            }
            return Ok(component);
        }
        let Some(artifact) = artifact else {
            return self.compile(name, bytes);
        };
        let compiled = self.precompile(name, bytes)?;
        if let Err(e) = write_atomically(&artifact, &compiled) {
            tracing::warn!("cannot cache {}: {e:#}", artifact.display());
        }
        // SAFETY: `compiled` was produced just now by this engine.
        unsafe { Component::deserialize(&self.engine, &compiled) }
    }

    /// Makes sure the cache holds the optimised artifact of the component at
    /// `path` (`host-shim compile`). Processes filling the same cache at once
    /// compile each component once: a lock file next to the artifact says
    /// that one is at it.
    pub fn fill(&self, path: &Path) -> Result<Filled> {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))?;
        let name = path.display().to_string();
        check_component_binary(&name, &bytes)?;
        let Some(artifact) = self.artifact_path(&bytes) else {
            wasmtime::bail!("no cache directory to fill (set GREENTIC_CACHE_DIR or HOME)");
        };
        // Loaded, not just present: a damaged artifact is compiled again.
        if self.load_artifact(&artifact).is_some() || self.load_precompiled(&name, &bytes).is_some()
        {
            return Ok(Filled::AlreadyThere);
        }
        let Some(_lock) = FillLock::take(&artifact)? else {
            return Ok(Filled::InProgress);
        };
        let compiled = self.precompile(&name, &bytes)?;
        write_atomically(&artifact, &compiled)
            .with_context(|| format!("cannot write {}", artifact.display()))?;
        Ok(Filled::Compiled)
    }

    fn artifact_path(&self, bytes: &[u8]) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        Some(dir.join(format!("{}.cwasm", self.key(bytes))))
    }

    fn load_artifact(&self, artifact: &Path) -> Option<Component> {
        if !artifact.is_file() {
            return None;
        }
        // Native code is loaded as it is: only from a file and directory no
        // one else could have written.
        let private = artifact
            .parent()
            .map_or(Ok(()), compose::private_dir::check_one)
            .and_then(|()| compose::private_dir::check_one(artifact));
        if let Err(e) = private {
            tracing::warn!("not loading a cached artifact: {e}");
            return None;
        }
        // SAFETY: the artifact was written by `Engine::precompile_component`
        // into our own cache directory, under a key that includes the
        // engine's compatibility hash.
        match unsafe { Component::deserialize_file(&self.engine, artifact) } {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(
                    "ignoring unusable cached artifact {}: {e:#}",
                    artifact.display()
                );
                None
            }
        }
    }

    /// The build's artifact for exactly these bytes, if there is one and this
    /// engine accepts it. A missing, damaged or foreign artifact (another
    /// Wasmtime, other settings, another CPU) is reported and skipped: the
    /// caller compiles instead.
    fn load_precompiled(&self, name: &str, bytes: &[u8]) -> Option<Component> {
        if self.precompiled.is_empty() {
            return None;
        }
        let digest = hex(&Sha256::digest(bytes));
        let entry = self
            .precompiled
            .iter()
            .find(|p| p.source_sha256 == digest)?;
        if !entry.artifact.is_file() {
            tracing::debug!("no precompiled artifact at {}", entry.artifact.display());
            return None;
        }
        // SAFETY: the artifact was written by `Engine::precompile_component` in
        // host-shim's build, next to the runner it built; Wasmtime checks that
        // it was made by this Wasmtime version with this engine's settings.
        match unsafe { Component::deserialize_file(&self.engine, &entry.artifact) } {
            Ok(component) => Some(component),
            Err(e) => {
                self.progress(&format!(
                    "the precompiled {} does not fit this engine ({e}); compiling {name} instead",
                    entry.artifact.display()
                ));
                None
            }
        }
    }

    /// Winch's compilation of `bytes`, or `None` (said why) when it cannot.
    fn compile_baseline(&self, name: &str, bytes: &[u8]) -> Option<Component> {
        let engine = self
            .baseline
            .get_or_init(
                || match Engine::new(&greentic_runner_engine::baseline_config()) {
                    Ok(engine) => {
                        start_epoch_ticker(&engine);
                        Some(engine)
                    }
                    Err(e) => {
                        tracing::debug!("no baseline compiler here: {e:#}");
                        None
                    }
                },
            )
            .as_ref()?;
        let started = Instant::now();
        match Component::new(engine, bytes) {
            Ok(component) => {
                self.compiled.fetch_add(1, Ordering::Relaxed);
                self.progress(&format!(
                    "compiled {name} with the baseline compiler in {:.1?} (first use)",
                    started.elapsed()
                ));
                Some(component)
            }
            Err(e) => {
                tracing::debug!("the baseline compiler cannot compile {name}: {e:#}");
                None
            }
        }
    }

    fn precompile(&self, name: &str, bytes: &[u8]) -> Result<Vec<u8>> {
        let started = Instant::now();
        self.progress(&format!(
            "compiling {name} (first use; cached for next runs)…"
        ));
        let compiled = self
            .engine
            .precompile_component(bytes)
            .with_context(|| format!("`{name}` is not a valid component"))?;
        self.compiled.fetch_add(1, Ordering::Relaxed);
        self.progress(&format!("compiled {name} in {:.1?}", started.elapsed()));
        Ok(compiled)
    }

    fn compile(&self, name: &str, bytes: &[u8]) -> Result<Component> {
        let started = Instant::now();
        self.progress(&format!("compiling {name}…"));
        let component = Component::new(&self.engine, bytes)
            .with_context(|| format!("`{name}` is not a valid component"))?;
        self.compiled.fetch_add(1, Ordering::Relaxed);
        self.progress(&format!("compiled {name} in {:.1?}", started.elapsed()));
        Ok(component)
    }

    fn key(&self, bytes: &[u8]) -> String {
        let mut hasher = ShaHasher(Sha256::new());
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut hasher);
        hasher.0.update(bytes);
        hex(&hasher.0.finalize())
    }

    fn progress(&self, message: &str) {
        if !self.quiet {
            eprintln!("host-shim: {message}");
        }
    }
}

/// Starts `exe compile` for `components`, detached, so their optimised
/// artifacts are in the cache for the next run while this one ends without
/// waiting for Cranelift. Best effort: a failure to start is only logged.
pub fn compile_in_background(exe: &Path, cache_dir: &Path, components: &[PathBuf]) {
    if components.is_empty() {
        return;
    }
    let spawned = std::process::Command::new(exe)
        .arg("compile")
        .arg("--quiet")
        .arg("--")
        .args(components)
        .env("GREENTIC_CACHE_DIR", cache_dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    match spawned {
        // Not waited for: it outlives this process by design.
        Ok(child) => drop(child),
        Err(e) => tracing::warn!("cannot start `{} compile`: {e}", exe.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::build::new_engine;

    fn component(wat: &str) -> Vec<u8> {
        wat::parse_str(wat).unwrap()
    }

    fn precompiled(dir: &Path, source: &[u8], artifact: &[u8]) -> Precompiled {
        let path = dir.join("artifact.cwasm");
        std::fs::write(&path, artifact).unwrap();
        Precompiled {
            source_sha256: hex(&Sha256::digest(source)),
            artifact: path,
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("host-shim-engine-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_build_artifact_serves_its_own_bytes_and_no_others() {
        let dir = scratch("own-bytes");
        let engine = new_engine(crate::engine::EngineFor::Nodes).unwrap();
        let runner = component("(component (core module))");
        let other = component("(component (core module (func)))");
        let artifact = engine.precompile_component(&runner).unwrap();
        let cache = ComponentCache::new(engine, None, true)
            .with_precompiled(precompiled(&dir, &runner, &artifact));
        cache.load_bytes("runner", &runner).unwrap();
        assert_eq!(cache.compiled_count(), 0, "the artifact was not used");
        cache.load_bytes("other", &other).unwrap();
        assert_eq!(cache.compiled_count(), 1, "other bytes must be compiled");
    }

    #[test]
    fn a_foreign_or_damaged_build_artifact_falls_back_to_compiling() {
        let dir = scratch("foreign");
        let runner = component("(component (core module (func (export \"f\"))))");
        // Made by an engine with other settings: Wasmtime refuses it.
        let mut foreign = greentic_runner_engine::config();
        foreign.consume_fuel(false);
        let foreign = Engine::new(&foreign)
            .unwrap()
            .precompile_component(&runner)
            .unwrap();
        for artifact in [foreign, b"not an artifact".to_vec()] {
            let cache = ComponentCache::new(
                new_engine(crate::engine::EngineFor::Nodes).unwrap(),
                None,
                true,
            )
            .with_precompiled(precompiled(&dir, &runner, &artifact));
            cache.load_bytes("runner", &runner).unwrap();
            assert_eq!(cache.compiled_count(), 1, "the foreign artifact was used");
        }
    }

    #[test]
    fn baseline_misses_are_remembered_for_the_cache_only() {
        let dir = scratch("baseline");
        let path = dir.join("c.wasm");
        std::fs::write(&path, component("(component (core module (func)))")).unwrap();
        let cached = ComponentCache::new(
            new_engine(crate::engine::EngineFor::Nodes).unwrap(),
            Some(dir.join("cache")),
            true,
        )
        .on_miss(OnMiss::Baseline);
        cached.load(&path).unwrap();
        assert_eq!(cached.take_baseline_compiled(), vec![path.clone()]);
        assert!(cached.take_baseline_compiled().is_empty());
        assert_eq!(cached.fill(&path).unwrap(), Filled::Compiled);
        assert_eq!(cached.fill(&path).unwrap(), Filled::AlreadyThere);
        // Now the optimised artifact is found: nothing compiled, nothing remembered.
        let again = ComponentCache::new(
            new_engine(crate::engine::EngineFor::Nodes).unwrap(),
            Some(dir.join("cache")),
            true,
        )
        .on_miss(OnMiss::Baseline);
        again.load(&path).unwrap();
        assert_eq!(again.compiled_count(), 0);
        assert!(again.take_baseline_compiled().is_empty());
        // Without a cache there is nothing to fill later.
        let uncached = ComponentCache::new(
            new_engine(crate::engine::EngineFor::Nodes).unwrap(),
            None,
            true,
        )
        .on_miss(OnMiss::Baseline);
        uncached.load(&path).unwrap();
        assert!(uncached.take_baseline_compiled().is_empty());
    }

    #[test]
    fn a_fresh_fill_lock_means_another_process_compiles() {
        let dir = scratch("lock");
        let path = dir.join("c.wasm");
        std::fs::write(&path, component("(component)")).unwrap();
        let cache = ComponentCache::new(
            new_engine(crate::engine::EngineFor::Nodes).unwrap(),
            Some(dir.join("cache")),
            true,
        );
        let bytes = std::fs::read(&path).unwrap();
        let artifact = cache.artifact_path(&bytes).unwrap();
        let held = FillLock::take(&artifact).unwrap().expect("free");
        assert_eq!(cache.fill(&path).unwrap(), Filled::InProgress);
        drop(held);
        assert_eq!(cache.fill(&path).unwrap(), Filled::Compiled);
    }
}
