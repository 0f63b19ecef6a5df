//! Stages a world exporting greentic's telemetry logger (WIT from the
//! greentic-interfaces crate) and writes the bindings call `src/lib.rs` includes.
fn main() {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let world = "package greentic:runner-telemetry@0.1.0;\n\n\
                 /// A telemetry logger inside a composition.\n\
                 world provider {\n  export greentic:telemetry/logger-api@1.0.0;\n}\n";
    let wit = greentic_runner_wit::stage_world(
        &out.join("wit"),
        world,
        &[
            "greentic-telemetry-1.0.0",
            "greentic-interfaces-types-0.1.0",
        ],
    )
    .expect("staging the telemetry WIT");
    std::fs::write(
        out.join("bindings.rs"),
        format!(
            "wit_bindgen::generate!({{ path: {:?}, world: \"greentic:runner-telemetry/provider\", generate_all }});\n",
            wit.display().to_string()
        ),
    )
    .unwrap();
}
