// Shared by the test provider components' build scripts: a world exporting
// greentic's provider schema-core API and importing the HTTP client and the
// secrets store, as greentic's messaging providers do (WIT from the
// greentic-interfaces crate).
fn main() {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let world = "package greentic:runner-provider@0.1.0;\n\n\
                 /// A messaging provider: JSON ops through schema-core-api.\n\
                 world provider {\n  import greentic:http/http-client@1.1.0;\n  \
                 import greentic:secrets-store/secrets-store@1.0.0;\n  \
                 export greentic:provider-schema-core/schema-core-api@1.0.0;\n}\n";
    let wit = greentic_runner_wit::stage_world(
        &out.join("wit"),
        world,
        &[
            "greentic-provider-schema-core-1.0.0",
            "greentic-http-1.1.0",
            "greentic-secrets-store-1.0.0",
            "greentic-interfaces-types-0.1.0",
        ],
    )
    .expect("staging the provider WIT");
    std::fs::write(
        out.join("bindings.rs"),
        format!(
            "wit_bindgen::generate!({{ path: {:?}, world: \"greentic:runner-provider/provider\", generate_all }});\n",
            wit.display().to_string()
        ),
    )
    .unwrap();
    println!("cargo:rerun-if-changed=../provider-common/build.rs");
    println!("cargo:rerun-if-changed=../provider-common/provider.rs");
}
