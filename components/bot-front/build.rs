//! Stages a world importing greentic's provider schema-core API (WIT from
//! the greentic-interfaces crate); the runner and baked-flows imports and
//! the `app` export come with front-kit's bindings.
fn main() {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let world = "package greentic:runner-bot@0.1.0;\n\n\
                 /// What the bot front calls besides the runner: the channel's provider.\n\
                 world bot-front {\n  import greentic:provider-schema-core/schema-core-api@1.0.0;\n}\n";
    let wit = greentic_runner_wit::stage_world(
        &out.join("wit"),
        world,
        &["greentic-provider-schema-core-1.0.0"],
    )
    .expect("staging the provider WIT");
    std::fs::write(
        out.join("bindings.rs"),
        format!(
            "wit_bindgen::generate!({{ path: {:?}, world: \"greentic:runner-bot/bot-front\", generate_all }});\n",
            wit.display().to_string()
        ),
    )
    .unwrap();
}
