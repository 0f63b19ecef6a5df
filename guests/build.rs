//! Builds the WebAssembly that host-shim ships with, so `cargo run -p host-shim`
//! works on a fresh clone (the wasm32-wasip2 target is added if missing):
//! - the runner component (`runner-core` for wasm32-wasip2), precompiled for
//!   host-shim's engine;
//! - the example node components (`components/` workspace), copied to
//!   `<target>/components/<name>.wasm`, the default `--components` directory;
//! - the parts compositions are made of, in `<target>/compose-parts/`.
//!
//! The wasm builds use their own target dir (`<target>/wasm-build`): the outer
//! cargo holds the lock on the normal one.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-wasip2";
/// Node components of `components/` copied to the default components directory,
/// each with its `component.manifest.json` (as `<name>.manifest.json`) when it has one.
const EXAMPLE_COMPONENTS: &[&str] = &[
    "echo",
    "text",
    "users",
    "faulty",
    "patient",
    "counter",
    "state-probe",
    "legacy-v04",
    "legacy-v05",
    "logger",
    "secret-reader",
    "http-fetch",
    "asset-reader",
    "runtime-counter",
    "legacy-v04-pre-i18n",
    "legacy-v05-pre-i18n",
    "bot-telegram",
    "bot-slack",
];
/// Components of `components/` that compositions are built from.
const COMPOSE_PARTS: &[&str] = &[
    "empty-slot",
    "state-memory",
    "state-deny",
    "run-scope",
    "telemetry-stderr",
    "adapt-runtime",
    "adapt-v04",
    "adapt-v05",
    "adapt-v04-pre-i18n",
    "adapt-v05-pre-i18n",
    "capability-deny",
    "app-front",
    "http-front",
    "bot-front",
    "caps-wasi",
];

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest.parent().unwrap().to_path_buf();
    let target = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    let wasm_target_dir = target.join("wasm-build");

    for watched in [
        "runner-core/src",
        "runner-core/Cargo.toml",
        "components",
        "Cargo.lock",
        "wit/runner.wit",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    for file in greentic_runner_wit::watched_files() {
        println!("cargo:rerun-if-changed={}", file.display());
    }

    ensure_wasm_target();
    cargo_wasm(
        &workspace.join("Cargo.toml"),
        &["-p", "runner-core"],
        &wasm_target_dir,
    );
    let components = workspace.join("components/Cargo.toml");
    cargo_wasm(
        &components,
        &[
            "--workspace",
            "--exclude",
            "state-probe",
            "--exclude",
            "front-kit",
            "--exclude",
            "app-front",
            "--exclude",
            "http-front",
        ],
        &wasm_target_dir,
    );
    // The front parts print JSON in the runner's key order (serde_json's
    // `preserve_order`); built on their own so that feature does not reach
    // the node components.
    cargo_wasm(
        &components,
        &["-p", "app-front", "-p", "http-front"],
        &wasm_target_dir,
    );
    // state-probe enables state-store@1.1.0; built on its own so that feature does
    // not reach the others (wit-component would turn their @1.0.0 import into @1.1.0).
    cargo_wasm(&components, &["-p", "state-probe"], &wasm_target_dir);

    let release = wasm_target_dir.join(WASM_TARGET).join("release");
    let components_dir = target.join("components");
    fs::create_dir_all(&components_dir).unwrap();
    for name in EXAMPLE_COMPONENTS {
        let artifact = release.join(format!("{}.wasm", name.replace('-', "_")));
        copy_if_changed(&artifact, &components_dir.join(format!("{name}.wasm")));
        let manifest = workspace
            .join("components")
            .join(name)
            .join("component.manifest.json");
        let copied = components_dir.join(format!("{name}.manifest.json"));
        if manifest.is_file() {
            copy_if_changed(&manifest, &copied);
        } else {
            let _ = fs::remove_file(&copied);
        }
    }
    // Parts `compose` plugs into compositions (not node components of flows).
    let parts_dir = target.join("compose-parts");
    fs::create_dir_all(&parts_dir).unwrap();
    for name in COMPOSE_PARTS {
        let artifact = release.join(format!("{}.wasm", name.replace('-', "_")));
        copy_if_changed(&artifact, &parts_dir.join(format!("{name}.wasm")));
    }
    println!(
        "cargo:rustc-env=GREENTIC_COMPOSE_PARTS_DIR={}",
        parts_dir.display()
    );

    let runner = target.join("runner").join("runner.wasm");
    fs::create_dir_all(runner.parent().unwrap()).unwrap();
    copy_if_changed(&release.join("runner_core.wasm"), &runner);

    println!("cargo:rustc-env=GREENTIC_RUNNER_WASM={}", runner.display());
    precompile_runner(&runner);
    println!(
        "cargo:rustc-env=GREENTIC_COMPONENTS_DIR={}",
        components_dir.display()
    );
}

/// Compiles the runner ahead of time for host-shim's runner engine, so that a first run
/// on an empty cache (a fresh container, a CI job) deserializes it instead of
/// spending most of a second in Cranelift. host-shim uses the artifact only for
/// runner bytes with the recorded SHA-256, and only if its engine accepts it
/// (Wasmtime checks its compatibility hash); otherwise it compiles as before.
fn precompile_runner(runner: &Path) {
    use sha2::{Digest, Sha256};
    let bytes = fs::read(runner).unwrap();
    let engine = wasmtime::Engine::new(&greentic_runner_engine::runner_config())
        .expect("creating host-shim's engine in the build script");
    let artifact = engine
        .precompile_component(&bytes)
        .unwrap_or_else(|e| panic!("precompiling {}: {e:?}", runner.display()));
    let cwasm = runner.with_extension("cwasm");
    copy_bytes_if_changed(&artifact, &cwasm);
    let digest: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    println!("cargo:rustc-env=GREENTIC_RUNNER_CWASM={}", cwasm.display());
    println!("cargo:rustc-env=GREENTIC_RUNNER_WASM_SHA256={digest}");
}

/// Adds the wasm target through rustup when it is missing, so one command works
/// on a fresh machine.
fn ensure_wasm_target() {
    let sysroot = Command::new(env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .args(["--print", "sysroot"])
        .output()
        .expect("running rustc --print sysroot");
    let sysroot = String::from_utf8_lossy(&sysroot.stdout).trim().to_string();
    if Path::new(&sysroot)
        .join("lib/rustlib")
        .join(WASM_TARGET)
        .is_dir()
    {
        return;
    }
    println!("cargo:warning=installing the {WASM_TARGET} target with rustup");
    let status = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .status()
        .unwrap_or_else(|e| panic!("the {WASM_TARGET} target is missing and rustup could not run ({e}); install it with `rustup target add {WASM_TARGET}`"));
    assert!(status.success(), "`rustup target add {WASM_TARGET}` failed");
}

fn cargo_wasm(manifest: &Path, extra: &[&str], target_dir: &Path) {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--release")
        .arg("--target")
        .arg(WASM_TARGET)
        .arg("--manifest-path")
        .arg(manifest)
        .args(extra)
        .env("CARGO_TARGET_DIR", target_dir);
    // Settings meant for the outer (native) build must not leak into the wasm one.
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy().to_string();
        if key.starts_with("CARGO_CFG_")
            || key.starts_with("CARGO_FEATURE_")
            || key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_MANIFEST_")
            || key.starts_with("DEP_")
            || matches!(
                key.as_str(),
                "CARGO_ENCODED_RUSTFLAGS"
                    | "RUSTFLAGS"
                    | "RUSTC_WRAPPER"
                    | "RUSTC_WORKSPACE_WRAPPER"
                    | "CARGO_BUILD_TARGET"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_TARGET_DIR"
                    | "OUT_DIR"
                    | "TARGET"
                    | "HOST"
                    | "PROFILE"
                    | "OPT_LEVEL"
                    | "DEBUG"
                    | "NUM_JOBS"
                    | "CARGO_LLVM_COV"
                    | "LLVM_PROFILE_FILE"
            )
        {
            cmd.env_remove(&key);
        }
    }
    cmd.env("CARGO_TARGET_DIR", target_dir);
    let status = cmd.status().expect("running cargo for the wasm build");
    assert!(
        status.success(),
        "building {} for {WASM_TARGET} failed",
        manifest.display()
    );
}

/// Copies only when the content changed, so mtimes (and caches keyed on them) stay put.
fn copy_if_changed(from: &Path, to: &Path) {
    let bytes = fs::read(from).unwrap_or_else(|e| panic!("reading {}: {e}", from.display()));
    copy_bytes_if_changed(&bytes, to);
}

/// Writes `bytes` to `to` unless it already holds them.
fn copy_bytes_if_changed(bytes: &[u8], to: &Path) {
    if fs::read(to).ok().as_deref() != Some(bytes) {
        fs::write(to, bytes).unwrap();
    }
}
