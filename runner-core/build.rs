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
}
