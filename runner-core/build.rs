//! For wasm32 builds, stages the runner WIT (with the greentic packages it uses)
//! into OUT_DIR and writes the `wit_bindgen::generate!` call that `src/guest.rs`
//! includes. Native builds need no bindings.

use std::{env, fs, path::PathBuf};

fn main() {
    for file in greentic_runner_wit::watched_files() {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    if env::var("CARGO_CFG_TARGET_ARCH").as_deref() != Ok("wasm32") {
        return;
    }
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let wit = greentic_runner_wit::stage(&out.join("wit")).expect("staging the runner WIT");
    let bindings = format!(
        "wit_bindgen::generate!({{ path: {:?}, world: \"greentic:runner/runner\", generate_all }});\n",
        wit.display().to_string()
    );
    fs::write(out.join("bindings.rs"), bindings).unwrap();
    // One match arm per node slot import: slot i -> `greentic::runner::slot_<x>::invoke`.
    let mut dispatch = String::from(
        "/// Calls node slot `slot`; `None` if the runner has no such slot.\n\
         fn invoke_slot(slot: u32, op: &str, envelope: &InvocationEnvelope) -> Option<Result<InvocationResult, NodeError>> {\n    match slot {\n",
    );
    for i in 0..greentic_runner_wit::SLOT_COUNT {
        let module = greentic_runner_wit::slot_name(i).replace('-', "_");
        dispatch.push_str(&format!(
            "        {i} => Some(bindings::greentic::runner::{module}::invoke(op, envelope)),\n"
        ));
    }
    dispatch.push_str("        _ => None,\n    }\n}\n");
    fs::write(out.join("slot_dispatch.rs"), dispatch).unwrap();
}
