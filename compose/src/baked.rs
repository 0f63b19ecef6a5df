//! The generated part of a self-contained composition: a component exporting
//! `greentic:runner/baked-flows@0.1.0` (`wit/baked-flows.wit`), whose one
//! function returns the flows the app was composed from as a JSON document.
//!
//! The text lives in a data segment of a one-function core module; the
//! function returns a pointer to its (pointer, length) pair, which is how the
//! canonical ABI returns a string. wit-component wraps the module into the
//! component, so the encoding is the standard one, not ours.

use greentic_baked_doc::Baked;
pub use greentic_baked_doc::{BotSettings, HttpSettings};
use wasm_encoder::{
    CodeSection, ConstExpr, DataSection, ExportKind, ExportSection, Function, FunctionSection,
    Instruction, MemorySection, MemoryType, Module, TypeSection, ValType,
};
use wit_component::{ComponentEncoder, StringEncoding};
use wit_parser::Resolve;

use runner_core::FlowSource;

/// The interface, as compose and the front parts know it.
const BAKED_WIT: &str = include_str!("../../wit/baked-flows.wit");
const EXPORT: &str = "greentic:runner/baked-flows@0.1.0";

/// The JSON document `flows-json` returns (what `front-kit` reads).
pub fn document(
    flow_id: &str,
    main: &FlowSource,
    library: &[&FlowSource],
    http: &HttpSettings,
    bot: Option<&BotSettings>,
) -> String {
    serde_json::to_string(&Baked {
        flow_id: flow_id.to_string(),
        main: main.clone(),
        library: library.iter().map(|s| (*s).clone()).collect(),
        http: http.clone(),
        bot: bot.cloned(),
    })
    .expect("serializing plain strings cannot fail")
}

/// A component exporting `baked-flows` that returns `text`.
pub fn component(text: &str) -> anyhow::Result<Vec<u8>> {
    let mut module = core_module(text.as_bytes())?;
    let mut resolve = Resolve::default();
    let package = resolve.push_str("baked-flows.wit", BAKED_WIT)?;
    let world = resolve.select_world(&[package], Some("baked"))?;
    wit_component::embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8)?;
    ComponentEncoder::default()
        .module(&module)?
        .validate(true)
        .encode()
}

/// Where the (pointer, length) pair is; the text follows it.
const RETURN_AREA: u32 = 8;
const TEXT_AT: u32 = 16;

fn core_module(text: &[u8]) -> anyhow::Result<Vec<u8>> {
    let len = u32::try_from(text.len())
        .ok()
        .filter(|n| n.checked_add(TEXT_AT).is_some())
        .ok_or_else(|| anyhow::anyhow!("the flows to bake are larger than 4 GiB"))?;
    let mut module = Module::new();
    let mut types = TypeSection::new();
    types.ty().function([], [ValType::I32]);
    module.section(&types);
    let mut functions = FunctionSection::new();
    functions.function(0);
    module.section(&functions);
    let mut memories = MemorySection::new();
    let pages = (u64::from(TEXT_AT) + u64::from(len))
        .div_ceil(65_536)
        .max(1);
    memories.memory(MemoryType {
        minimum: pages,
        maximum: Some(pages),
        memory64: false,
        shared: false,
        page_size_log2: None,
    });
    module.section(&memories);
    let mut exports = ExportSection::new();
    exports.export("memory", ExportKind::Memory, 0);
    exports.export(&format!("{EXPORT}#flows-json"), ExportKind::Func, 0);
    module.section(&exports);
    let mut code = CodeSection::new();
    let mut body = Function::new([]);
    body.instruction(&Instruction::I32Const(RETURN_AREA as i32));
    body.instruction(&Instruction::End);
    code.function(&body);
    module.section(&code);
    let mut data = DataSection::new();
    let mut pair = TEXT_AT.to_le_bytes().to_vec();
    pair.extend_from_slice(&len.to_le_bytes());
    data.active(0, &ConstExpr::i32_const(RETURN_AREA as i32), pair);
    data.active(
        0,
        &ConstExpr::i32_const(TEXT_AT as i32),
        text.iter().copied(),
    );
    module.section(&data);
    Ok(module.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_part_exports_baked_flows_only() {
        let bytes = component("{\"flow_id\":\"x\"}").unwrap();
        let mut validator = wasmparser::Validator::new();
        validator.validate_all(&bytes).unwrap();
        let wit_component::DecodedWasm::Component(resolve, world) =
            wit_component::decode(&bytes).unwrap()
        else {
            panic!("not a component");
        };
        let world = &resolve.worlds[world];
        assert!(world.imports.is_empty(), "{:?}", world.imports);
        let exports: Vec<String> = world
            .exports
            .keys()
            .map(|k| resolve.name_world_key(k))
            .collect();
        assert_eq!(exports, vec![EXPORT.to_string()]);
    }
}
