// Shared by the legacy-v04 and legacy-v05 build scripts (which define PACKAGE and WORLD).
fn main() {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let bundled = greentic_runner_wit::legacy_bundled_wit().expect("finding greentic-interfaces 0.4");
    let wit = greentic_runner_wit::stage_package(&bundled, PACKAGE, &out.join("wit")).expect("staging the WIT");
    std::fs::write(
        out.join("bindings.rs"),
        format!("wit_bindgen::generate!({{ path: {:?}, world: {WORLD:?}, generate_all }});\n", wit.display().to_string()),
    )
    .unwrap();
    println!("cargo:rerun-if-changed=../legacy-common");
}
