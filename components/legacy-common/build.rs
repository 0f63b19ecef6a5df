// Shared by the legacy-* build scripts (which define PACKAGE, WORLD and PRE_I18N:
// whether to build the older record shape, without `i18n-id`).
fn main() {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let bundled = greentic_runner_wit::legacy_bundled_wit().expect("finding greentic-interfaces 0.4");
    let stage = if PRE_I18N {
        greentic_runner_wit::stage_package_pre_i18n
    } else {
        greentic_runner_wit::stage_package
    };
    let wit = stage(&bundled, PACKAGE, &out.join("wit")).expect("staging the WIT");
    std::fs::write(
        out.join("bindings.rs"),
        format!("wit_bindgen::generate!({{ path: {:?}, world: {WORLD:?}, generate_all }});\n", wit.display().to_string()),
    )
    .unwrap();
    println!("cargo:rerun-if-changed=../legacy-common");
}
