//! Stages the provider world — greentic's state-store WIT (from the
//! greentic-interfaces crate) and the runner's `current-scope` — and writes
//! the bindings call `src/lib.rs` includes.
fn main() {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let world = "package greentic:runner-state@0.1.0;\n\n\
                 /// A state-store provider inside a composition, keyed by the run's scope.\n\
                 world scoped-provider {\n  import greentic:runner/current-scope@0.1.0;\n  \
                 export greentic:state/state-store@1.1.0;\n}\n";
    let wit = greentic_runner_wit::stage_world(
        &out.join("wit"),
        world,
        &["greentic-state-1.1.0", "greentic-interfaces-types-0.1.0"],
    )
    .expect("staging the state-store WIT");
    greentic_runner_wit::stage_run_scope(&wit).expect("staging the run-scope WIT");
    std::fs::write(
        out.join("bindings.rs"),
        format!(
            "wit_bindgen::generate!({{ path: {:?}, world: \"greentic:runner-state/scoped-provider\", generate_all }});\n",
            wit.display().to_string()
        ),
    )
    .unwrap();
    for file in greentic_runner_wit::watched_files() {
        println!("cargo:rerun-if-changed={}", file.display());
    }
}
