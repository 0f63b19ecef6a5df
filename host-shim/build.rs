//! Stages the WIT host-shim generates bindings from: the runner world
//! (`wit/runner.wit` with the greentic packages it uses) and the legacy JSON
//! node ABIs from greentic-interfaces 0.4. The WebAssembly host-shim runs is
//! built by the `greentic-guests` crate.

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest.parent().unwrap().to_path_buf();
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("wit/runner.wit").display()
    );
    for file in greentic_runner_wit::watched_files() {
        println!("cargo:rerun-if-changed={}", file.display());
    }

    // Host bindings for the legacy JSON ABIs, from greentic-interfaces 0.4, in
    // both record shapes found in the wild (with and without `i18n-id`).
    let legacy =
        greentic_runner_wit::legacy_bundled_wit().expect("finding greentic-interfaces 0.4");
    let mut legacy_bindings = String::new();
    for (module, version, pre_i18n) in [
        ("v05", "0.5.0", false),
        ("v04", "0.4.0", false),
        ("v05_pre_i18n", "0.5.0", true),
        ("v04_pre_i18n", "0.4.0", true),
    ] {
        let stage = if pre_i18n {
            greentic_runner_wit::stage_package_pre_i18n
        } else {
            greentic_runner_wit::stage_package
        };
        let dir = stage(
            &legacy,
            &format!("greentic-component-{version}"),
            &out.join(format!("legacy-{module}")),
        )
        .expect("staging legacy WIT");
        legacy_bindings.push_str(&format!(
            "/// `greentic:component@{version}`{}.\npub mod {module} {{ wasmtime::component::bindgen!({{ path: {:?}, world: \"greentic:component/component@{version}\" }}); }}\n",
            if pre_i18n { " without `i18n-id`" } else { "" },
            dir.display().to_string()
        ));
    }
    fs::write(out.join("legacy_bindings.rs"), legacy_bindings).unwrap();

    let wit = greentic_runner_wit::stage(&out.join("wit")).expect("staging the runner WIT");
    fs::write(
        out.join("runner_bindings.rs"),
        format!(
            "wasmtime::component::bindgen!({{ path: {:?}, world: \"greentic:runner/runner\" }});\n",
            wit.display().to_string()
        ),
    )
    .unwrap();
}
