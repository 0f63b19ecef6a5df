//! What the verbs share: the profile, the state backend, hosts, targets.

use std::path::{Path, PathBuf};

use super::args::{Compiler, ComponentArgs, Templating, Verify};
use crate::engine::OnMiss;
use crate::{Failure, Host, HostOptions};

/// The profile named by `--profile`, with `--allow-host` added.
pub(super) fn profile(common: &ComponentArgs) -> Result<compose::policy::Profile, Failure> {
    let mut profile = compose::policy::Profile::select(&common.profile)
        .map_err(|e| Failure::Invalid(e.into()))?;
    profile.allow_hosts(&common.allow_hosts);
    Ok(profile)
}

/// `--state`, else memory; with `--session`, a file that outlives the process.
pub(super) fn state_backend(
    common: &ComponentArgs,
    session: bool,
) -> Result<crate::caps::state::StateBackend, Failure> {
    use crate::caps::state::StateBackend;
    match &common.state {
        Some(backend) => Ok(backend.clone()),
        None if session => {
            let dir = std::env::var_os("GREENTIC_DATA_DIR")
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("XDG_DATA_HOME")
                        .map(PathBuf::from)
                        .or_else(|| {
                            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share"))
                        })
                        .map(|base| base.join("greentic-runner"))
                })
                .ok_or_else(|| {
                    Failure::Invalid(anyhow::anyhow!(
                        "--session needs a state backend that outlives this process: pass --state file:PATH or redis://…"
                    ))
                })?;
            std::fs::create_dir_all(&dir).map_err(|e| {
                Failure::Invalid(anyhow::anyhow!("cannot create `{}`: {e}", dir.display()))
            })?;
            Ok(StateBackend::File(dir.join("state.redb")))
        }
        None => Ok(StateBackend::Memory),
    }
}

pub(super) fn host(common: &ComponentArgs) -> Result<Host, Failure> {
    host_with_state(common, state_backend(common, false)?)
}

pub(super) fn host_with_state(
    common: &ComponentArgs,
    state: crate::caps::state::StateBackend,
) -> Result<Host, Failure> {
    Host::new(host_options(common, state)?).map_err(Failure::Invalid)
}

pub(super) fn host_options(
    common: &ComponentArgs,
    state: crate::caps::state::StateBackend,
) -> Result<HostOptions, Failure> {
    let profile = profile(common)?;
    let secrets =
        crate::caps::secrets::SecretSource::new(common.secrets_file.as_deref(), &common.secrets)
            .map_err(Failure::Invalid)?;
    Ok(HostOptions {
        secrets,
        state,
        profile,
        component_dirs: common.components.clone(),
        registry: Some(registry(common)?),
        node_limits: crate::limits::NodeLimits {
            wall_time: std::time::Duration::from_millis(common.node_timeout_ms),
            fuel: common.node_fuel,
            memory_bytes: (common.node_memory_mb as usize) << 20,
            max_payload: common.max_payload,
        },
        runner: common.runner.clone(),
        state_bindings: Default::default(),
        http_roots: if common.ca_cert.is_empty() {
            crate::caps::http::TrustedRoots::from_pem_files(&common.http_ca)
        } else {
            crate::caps::http::TrustedRoots::builtin_and(&common.ca_cert)
        }
        .map_err(Failure::Invalid)?,
        http_connect_to: crate::caps::http::ConnectTo::new(common.connect_to.clone()),
        runner_memory_bytes: usize::try_from(common.runner_memory_mb)
            .ok()
            .and_then(|mb| mb.checked_mul(1 << 20))
            .ok_or_else(|| {
                Failure::Invalid(anyhow::anyhow!("invalid --runner-memory-mb: too large"))
            })?,
        cache: !common.no_cache,
        on_miss: match common.compiler {
            Compiler::Auto => OnMiss::Baseline,
            Compiler::Cranelift => OnMiss::Optimize,
        },
        quiet: common.quiet,
        stub_missing: common.stub_missing,
        strict_templating: common.templating.map(|t| t == Templating::Strict),
        shared_state: None,
        pooling_allocator: false,
        concurrent_runs: 1,
        fresh_runner_per_run: common.fresh_runner,
    })
}

/// What FLOW names: a flow file, a pack directory, a `.gtpack` or an
/// `oci://` pack reference (each with `#<flow id>`); archives are unpacked
/// into the compile cache's `packs/`, references fetched into its `oci/`.
pub(super) fn target(flow: &Path, sources: &Sources) -> Result<compose::pack::Target, Failure> {
    let local = sources.local(flow)?;
    let target = compose::pack::Target::parse(&local, &pack_cache())
        .map_err(|e| Failure::Invalid(e.into()))?;
    if let compose::pack::Target::Pack(pack, _) = &target {
        sources.trust.check(flow, pack)?;
    }
    Ok(target)
}

/// The registry `--lock` and `--offline` describe, caching in the compile
/// cache's `oci/`.
pub(super) fn registry(
    common: &ComponentArgs,
) -> Result<std::sync::Arc<greentic_registry::Registry>, Failure> {
    let mut options = greentic_registry::RegistryOptions::new(pack_cache().join("oci"));
    options.offline = common.offline;
    if let Some(lock) = &common.lock {
        options.lock =
            greentic_registry::Lock::read(lock).map_err(|e| Failure::Invalid(e.into()))?;
    }
    Ok(std::sync::Arc::new(greentic_registry::Registry::new(
        options,
    )))
}

/// Where packs come from and which are trusted.
pub(super) struct Sources {
    /// Signature policy.
    pub(super) trust: PackTrust,
    /// Registry references are fetched with it.
    pub(super) registry: std::sync::Arc<greentic_registry::Registry>,
}

impl Sources {
    /// From `--pack-key`, `--verify`, `--lock` and `--offline`.
    pub(super) fn of(common: &ComponentArgs) -> Result<Sources, Failure> {
        Ok(Sources {
            trust: PackTrust::of(common)?,
            registry: registry(common)?,
        })
    }

    /// Every pack trusted, references fetched as they are (commands that
    /// only read a pack's listing).
    pub(super) fn listing() -> Sources {
        let options = greentic_registry::RegistryOptions::new(pack_cache().join("oci"));
        Sources {
            trust: PackTrust::off(),
            registry: std::sync::Arc::new(greentic_registry::Registry::new(options)),
        }
    }

    /// FLOW itself, or for an `oci://` pack reference the fetched archive
    /// (keeping `#<flow id>`).
    pub(super) fn local(&self, flow: &Path) -> Result<PathBuf, Failure> {
        let text = flow.to_string_lossy();
        if !greentic_registry::OciRef::is_oci(&text) {
            return Ok(flow.to_path_buf());
        }
        let (reference, fragment) = match text.rsplit_once('#') {
            Some((r, f)) if !f.is_empty() && !f.contains('/') => (r, Some(f)),
            _ => (text.as_ref(), None),
        };
        let fetched = greentic_registry::OciRef::parse(reference)
            .and_then(|r| self.registry.fetch(&r, greentic_registry::Kind::Pack))
            .map_err(|e| Failure::Invalid(e.into()))?;
        let mut path = fetched.path.into_os_string();
        if let Some(f) = fragment {
            path.push(format!("#{f}"));
        }
        Ok(PathBuf::from(path))
    }
}

/// Which pack signatures are trusted, and what happens to the others
/// (`--pack-key`, `--verify`).
pub(super) struct PackTrust {
    mode: Verify,
    keys: Vec<compose::pack::TrustedKey>,
}

impl PackTrust {
    /// From `--pack-key` and `--verify`.
    pub(super) fn of(common: &ComponentArgs) -> Result<PackTrust, Failure> {
        let keys = common
            .pack_keys
            .iter()
            .map(|file| compose::pack::TrustedKey::load(file))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Failure::Invalid(e.into()))?;
        let mode = common.verify.unwrap_or(if keys.is_empty() {
            Verify::Off
        } else {
            Verify::Strict
        });
        if mode == Verify::Strict && keys.is_empty() {
            return Err(Failure::Invalid(anyhow::anyhow!(
                "--verify strict needs the public key(s) packs must be signed with: --pack-key FILE"
            )));
        }
        Ok(PackTrust { mode, keys })
    }

    /// Trusts every pack (commands that only read a pack's listing).
    pub(super) fn off() -> PackTrust {
        PackTrust {
            mode: Verify::Off,
            keys: Vec::new(),
        }
    }

    /// Checks `pack` (opened from `given`) under this policy.
    pub(super) fn check(&self, given: &Path, pack: &compose::pack::Pack) -> Result<(), Failure> {
        if self.mode == Verify::Off {
            return Ok(());
        }
        let seal = pack
            .seal(&self.keys)
            .map_err(|e| Failure::Invalid(e.into()))?;
        if matches!(seal, compose::pack::Seal::Signed { .. }) {
            return Ok(());
        }
        let message = format!("pack {}: {}", given.display(), seal.describe());
        if self.mode == Verify::Strict {
            return Err(Failure::Invalid(anyhow::anyhow!(
                "{message}; refused (--verify strict): nothing of it runs"
            )));
        }
        eprintln!("warning: {message} (--verify warn)");
        Ok(())
    }
}

/// Where `.gtpack` archives are unpacked: the compile cache's `packs/`.
pub(super) fn pack_cache() -> std::path::PathBuf {
    crate::engine::ComponentCache::default_dir()
        .unwrap_or_else(|| std::env::temp_dir().join("greentic-runner"))
}

/// The flow file FLOW stands for (a pack's entry flow, or the named one).
pub(super) fn flow_file(flow: &Path, sources: &Sources) -> Result<PathBuf, Failure> {
    target(flow, sources)?
        .flow_file()
        .map_err(|e| Failure::Invalid(e.into()))
}

/// Has the components this process compiled with Winch compiled by Cranelift
/// into the cache, in a process of their own, so the next run finds them.
pub(super) fn optimize_later(host: &Host) {
    let cache = host.component_cache();
    let (Some(dir), Ok(exe)) = (cache.dir(), std::env::current_exe()) else {
        return;
    };
    crate::engine::compile_in_background(&exe, dir, &cache.take_baseline_compiled());
}

/// The messaging channels a provider pack (`.gtpack` or directory) declares;
/// its other providers are named on stderr unless `quiet`.
pub(super) fn pack_channels(
    path: &Path,
    sources: &Sources,
    quiet: bool,
) -> Result<Vec<crate::messaging::ChannelProvider>, Failure> {
    // A provider pack is held to the same signature policy as the app's.
    let pack = compose::pack::Pack::open(&sources.local(path)?, &pack_cache())
        .map_err(|e| Failure::Invalid(e.into()))?;
    sources.trust.check(path, &pack)?;
    let mut skipped = Vec::new();
    let found = crate::messaging::ChannelProvider::of_pack(&pack, &mut skipped);
    if found.is_empty() {
        return Err(Failure::Invalid(anyhow::anyhow!(
            "`{}` declares no messaging provider (greentic.provider-extension.v1 with a `messaging.<channel>.*` provider_type)",
            path.display()
        )));
    }
    if !skipped.is_empty() && !quiet {
        eprintln!(
            "note: not messaging channels, not served: {}",
            skipped.join(", ")
        );
    }
    Ok(found)
}

/// A channel provider's `config` file: a JSON object (greentic's setup
/// answers such as `bot_token` or `api_base_url`).
pub(super) fn channel_config(file: &Path) -> Result<serde_json::Value, Failure> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        Failure::Invalid(anyhow::anyhow!(
            "--channel-config `{}`: {e}",
            file.display()
        ))
    })?;
    serde_json::from_str(&text)
        .ok()
        .filter(serde_json::Value::is_object)
        .ok_or_else(|| {
            Failure::Invalid(anyhow::anyhow!(
                "--channel-config `{}` is not a JSON object",
                file.display()
            ))
        })
}
