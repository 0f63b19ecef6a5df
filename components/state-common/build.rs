// Shared by the state-memory and state-deny build scripts.
fn main() {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let world = "package greentic:runner-state@0.1.0;\n\n\
                 /// A state-store provider inside a composition.\n\
                 world provider {\n  export greentic:state/state-store@1.1.0;\n}\n";
    let wit = greentic_runner_wit::stage_world(
        &out.join("wit"),
        world,
        &["greentic-state-1.1.0", "greentic-interfaces-types-0.1.0"],
    )
    .expect("staging the state-store WIT");
    std::fs::write(
        out.join("bindings.rs"),
        format!(
            "wit_bindgen::generate!({{ path: {:?}, world: \"greentic:runner-state/provider\", generate_all }});\n",
            wit.display().to_string()
        ),
    )
    .unwrap();
    println!("cargo:rerun-if-changed=../state-common/build.rs");
}
