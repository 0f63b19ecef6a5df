//! Stages `run-scope.wit` alone and writes the bindings `src/lib.rs` includes.
fn main() {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let wit = out.join("wit");
    if wit.exists() {
        std::fs::remove_dir_all(&wit).unwrap();
    }
    std::fs::create_dir_all(&wit).unwrap();
    let source = greentic_runner_wit::runner_wit_dir().join("run-scope.wit");
    std::fs::copy(&source, wit.join("run-scope.wit")).expect("staging run-scope.wit");
    std::fs::write(
        out.join("bindings.rs"),
        format!(
            "wit_bindgen::generate!({{ path: {:?}, world: \"greentic:runner/run-scope-part\" }});\n",
            wit.display().to_string()
        ),
    )
    .unwrap();
    println!("cargo:rerun-if-changed={}", source.display());
}
