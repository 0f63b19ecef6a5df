//! Stages the runner WIT and writes the bindings of the `app-front` world,
//! with an export macro the front crates invoke.
fn main() {
    for file in greentic_runner_wit::watched_files() {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let wit = greentic_runner_wit::stage(&out.join("wit")).expect("staging the runner WIT");
    std::fs::write(
        out.join("bindings.rs"),
        format!(
            "wit_bindgen::generate!({{ path: {:?}, world: \"greentic:runner/app-front\", \
             pub_export_macro: true, export_macro_name: \"export_app_front\", \
             default_bindings_module: \"front_kit::bindings\" }});\n",
            wit.display().to_string()
        ),
    )
    .unwrap();
}
