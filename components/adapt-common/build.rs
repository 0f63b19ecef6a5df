// Shared by the adapt-* build scripts, which define ABI (the
// `greentic_runner_wit::AdaptedAbi` they adapt) and IMPORT (its interface).
fn main() {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let world = format!(
        "package greentic:runner-adapt@0.1.0;\n\n\
         /// Turns a node on another ABI into `node@0.6.0` inside a composition.\n\
         world adapter {{\n  import {IMPORT};\n  export greentic:component/node@0.6.0;\n}}\n"
    );
    let wit = greentic_runner_wit::stage_adapter(&out.join("wit"), &world, ABI).expect("staging the adapter WIT");
    let mut bindings = format!(
        "wit_bindgen::generate!({{ path: {:?}, world: \"greentic:runner-adapt/adapter\", generate_all }});\n",
        wit.display().to_string()
    );
    // wit-bindgen names a package that exists in two versions by its version
    // (`component0_4_0`); the adapter code uses one name for the legacy node.
    if let Some(version) = IMPORT.strip_prefix("greentic:component/node@") {
        bindings.push_str(&format!(
            "pub use self::greentic::component{}::node as legacy_node;\n",
            version.replace('.', "_")
        ));
    }
    std::fs::write(out.join("bindings.rs"), bindings).unwrap();
    println!("cargo::rustc-check-cfg=cfg(pre_i18n)");
    if matches!(ABI, greentic_runner_wit::AdaptedAbi::Legacy { pre_i18n: true, .. }) {
        println!("cargo::rustc-cfg=pre_i18n");
    }
    println!("cargo:rerun-if-changed=../adapt-common");
}
