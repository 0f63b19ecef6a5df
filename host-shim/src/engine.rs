//! The Wasmtime engine and the on-disk cache of compiled components.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Instant;

use sha2::{Digest, Sha256};
use wasmtime::Result;
use wasmtime::component::Component;
use wasmtime::error::Context;
use wasmtime::{Config, Engine};

/// Builds the engine every component of a process shares.
pub fn new_engine() -> Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    // No component-model async here: with it on, synchronous cross-component
    // calls (runner -> slot -> node) get much slower.
    config.concurrency_support(false);
    // Node components are untrusted: deadlines by epoch, optional fuel.
    config.epoch_interruption(true);
    config.consume_fuel(true);
    let engine = Engine::new(&config)?;
    start_epoch_ticker(&engine);
    Ok(engine)
}

/// Advances the engine's epoch every [`crate::limits::EPOCH_TICK`] for as long
/// as the engine lives.
fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("epoch-ticker".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(crate::limits::EPOCH_TICK);
            }
        })
        .expect("spawning the epoch ticker");
}

/// Compiles components, reusing artifacts from earlier processes.
///
/// An artifact is keyed by the engine's compatibility hash (Wasmtime version and
/// settings) and the SHA-256 of the component bytes, so a changed component or
/// engine never loads a stale artifact.
pub struct ComponentCache {
    engine: Engine,
    dir: Option<PathBuf>,
    quiet: bool,
}

impl ComponentCache {
    /// A cache in `dir`; `None` compiles every time.
    pub fn new(engine: Engine, dir: Option<PathBuf>, quiet: bool) -> Self {
        ComponentCache { engine, dir, quiet }
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

    /// The engine components are compiled for.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Loads the component at `path`, compiling it on a cache miss.
    pub fn load(&self, path: &Path) -> Result<Component> {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))?;
        self.load_bytes(&path.display().to_string(), &bytes)
    }

    /// Loads a component from its bytes; `name` is used in messages.
    pub fn load_bytes(&self, name: &str, bytes: &[u8]) -> Result<Component> {
        if !is_component_binary(bytes) {
            wasmtime::bail!(
                "`{name}` is not a WebAssembly component{}",
                if bytes.starts_with(b"\0asm") {
                    " (it is a core module; node components must be components)"
                } else {
                    ""
                }
            );
        }
        let Some(dir) = &self.dir else {
            return self.compile(name, bytes);
        };
        let artifact = dir.join(format!("{}.cwasm", self.key(bytes)));
        if artifact.is_file() {
            // SAFETY: the artifact was written by `Engine::precompile_component`
            // into our own cache directory, under a key that includes the
            // engine's compatibility hash.
            match unsafe { Component::deserialize_file(&self.engine, &artifact) } {
                Ok(component) => return Ok(component),
                Err(e) => tracing::warn!(
                    "ignoring unusable cached artifact {}: {e:#}",
                    artifact.display()
                ),
            }
        }
        let started = Instant::now();
        self.progress(&format!(
            "compiling {name} (first use; cached for next runs)…"
        ));
        let compiled = self
            .engine
            .precompile_component(bytes)
            .with_context(|| format!("`{name}` is not a valid component"))?;
        self.progress(&format!("compiled {name} in {:.1?}", started.elapsed()));
        if let Err(e) = write_atomically(dir, &artifact, &compiled) {
            tracing::warn!("cannot cache {}: {e:#}", artifact.display());
        }
        // SAFETY: `compiled` was produced just now by this engine.
        unsafe { Component::deserialize(&self.engine, &compiled) }
    }

    fn compile(&self, name: &str, bytes: &[u8]) -> Result<Component> {
        let started = Instant::now();
        self.progress(&format!("compiling {name}…"));
        let component = Component::new(&self.engine, bytes)
            .with_context(|| format!("`{name}` is not a valid component"))?;
        self.progress(&format!("compiled {name} in {:.1?}", started.elapsed()));
        Ok(component)
    }

    fn key(&self, bytes: &[u8]) -> String {
        let mut hasher = ShaHasher(Sha256::new());
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut hasher);
        hasher.0.update(bytes);
        hasher
            .0
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn progress(&self, message: &str) {
        if !self.quiet {
            eprintln!("host-shim: {message}");
        }
    }
}

/// Feeds `Hash` output into SHA-256.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        unreachable!("only the digest is used")
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// A component's preamble: magic, then version 0x0d with layer 1.
fn is_component_binary(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[6..8] == [1, 0]
}
