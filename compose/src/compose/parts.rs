//! The components a composition is built from besides the flow's own.

use std::path::{Path, PathBuf};

use super::options::ComposeError;

/// The components a composition is built from besides the flow's own.
#[derive(Debug, Clone)]
pub struct Parts {
    /// The runner component.
    pub runner: Vec<u8>,
    /// Fills unused node slots.
    pub empty_slot: Vec<u8>,
    /// In-memory state-store provider.
    pub state_memory: Vec<u8>,
    /// State-store provider that refuses every call.
    pub state_deny: Vec<u8>,
    /// Holds the scope of the run in progress for the state-memory parts.
    pub run_scope: Vec<u8>,
    /// Telemetry logger that writes to stderr (WASI).
    pub telemetry_stderr: Vec<u8>,
    /// Secrets store and HTTP clients that refuse every call.
    pub capability_deny: Vec<u8>,
    /// Adapters from the other node ABIs to `node@0.6.0`.
    pub adapters: Adapters,
    /// Front part exporting `greentic:runner/app` (runs the baked flow).
    pub app_front: Vec<u8>,
    /// Front part exporting that and `wasi:http/incoming-handler`.
    pub http_front: Vec<u8>,
    /// The composed bot's front: channel webhooks over `wasi:http`.
    pub bot_front: Vec<u8>,
    /// greentic's HTTP client and secrets store over WASI, for the bot's provider.
    pub caps_wasi: Vec<u8>,
}

/// Parts that turn a node component on another ABI into `node@0.6.0`.
#[derive(Debug, Clone)]
pub struct Adapters {
    /// `component-runtime@0.6.0`.
    pub runtime: Vec<u8>,
    /// `node@0.4.0`, with `i18n-id` in its records.
    pub v04: Vec<u8>,
    /// `node@0.5.0`, with `i18n-id` in its records.
    pub v05: Vec<u8>,
    /// `node@0.4.0`, the older shape without `i18n-id`.
    pub v04_pre_i18n: Vec<u8>,
    /// `node@0.5.0`, the older shape without `i18n-id`.
    pub v05_pre_i18n: Vec<u8>,
}

impl Parts {
    /// Reads the runner from `runner` and the other parts from `dir`
    /// (`empty-slot.wasm`, `state-memory.wasm`, `state-deny.wasm`, `run-scope.wasm`,
    /// `telemetry-stderr.wasm`, `capability-deny.wasm`, `adapt-*.wasm`,
    /// `app-front.wasm`, `http-front.wasm`, `bot-front.wasm`, `caps-wasi.wasm`).
    pub fn read(runner: &Path, dir: &Path) -> Result<Parts, ComposeError> {
        let read = |path: PathBuf| {
            std::fs::read(&path).map_err(|source| ComposeError::Read { path, source })
        };
        Ok(Parts {
            runner: read(runner.to_path_buf())?,
            empty_slot: read(dir.join("empty-slot.wasm"))?,
            state_memory: read(dir.join("state-memory.wasm"))?,
            state_deny: read(dir.join("state-deny.wasm"))?,
            run_scope: read(dir.join("run-scope.wasm"))?,
            telemetry_stderr: read(dir.join("telemetry-stderr.wasm"))?,
            capability_deny: read(dir.join("capability-deny.wasm"))?,
            adapters: Adapters {
                runtime: read(dir.join("adapt-runtime.wasm"))?,
                v04: read(dir.join("adapt-v04.wasm"))?,
                v05: read(dir.join("adapt-v05.wasm"))?,
                v04_pre_i18n: read(dir.join("adapt-v04-pre-i18n.wasm"))?,
                v05_pre_i18n: read(dir.join("adapt-v05-pre-i18n.wasm"))?,
            },
            app_front: read(dir.join("app-front.wasm"))?,
            http_front: read(dir.join("http-front.wasm"))?,
            bot_front: read(dir.join("bot-front.wasm"))?,
            caps_wasi: read(dir.join("caps-wasi.wasm"))?,
        })
    }
}
