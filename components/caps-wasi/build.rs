//! Stages a world importing the baked document and exporting greentic's
//! secrets store and both HTTP clients (WIT from the greentic-interfaces crate).
fn main() {
    for file in greentic_runner_wit::watched_files() {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let world = "package greentic:runner-caps@0.1.0;\n\n\
                 /// greentic's capabilities over WASI inside a composition.\n\
                 world caps {\n  import greentic:runner/baked-flows@0.1.0;\n  \
                 export greentic:secrets-store/secrets-store@1.0.0;\n  \
                 export greentic:http/http-client@1.0.0;\n  export greentic:http/http-client@1.1.0;\n}\n";
    let wit = greentic_runner_wit::stage_world(
        &out.join("wit"),
        world,
        &[
            "greentic-secrets-store-1.0.0",
            "greentic-http-1.0.0",
            "greentic-http-1.1.0",
            "greentic-interfaces-types-0.1.0",
        ],
    )
    .expect("staging the capability WIT");
    greentic_runner_wit::stage_baked_flows(&wit).expect("staging baked-flows");
    std::fs::write(
        out.join("bindings.rs"),
        format!(
            "wit_bindgen::generate!({{ path: {:?}, world: \"greentic:runner-caps/caps\", generate_all }});\n",
            wit.display().to_string()
        ),
    )
    .unwrap();
}
