//! Node components that export only `greentic:component/component-runtime@0.6.0`
//! (`run(input: list<u8>, state: list<u8>) -> run-result {output, new-state}`,
//! CBOR in and out), adapted to the runner's `node@0.6.0` slots.
//!
//! The input is the envelope's `payload-cbor`; the output becomes
//! `output-cbor` of an `ok` result. The component's `new-state` is kept by
//! the host for the run, per node, and passed back as `state` on that node's
//! next call (empty on its first); it is never persisted and never shared
//! between nodes. The operation name is not passed: this ABI has none.
//!
//! No greentic crate ships this interface's WIT, so it is bound by name and
//! checked by type when the component is linked (`get_typed_func`).

use std::collections::HashMap;

use wasmtime::Store;
use wasmtime::component::{
    ComponentExportIndex, ComponentType, Instance, InstancePre, Lift, TypedFunc,
};

use compose::RUNTIME_EXPORT;

use super::store::NodeState;

/// `run-result`.
#[derive(ComponentType, Lift, Debug)]
#[component(record)]
pub struct RunResult {
    output: Vec<u8>,
    #[component(name = "new-state")]
    new_state: Vec<u8>,
}

type RunFunc = TypedFunc<(Vec<u8>, Vec<u8>), (RunResult,)>;

/// A linked component-runtime component: where its `run` is.
#[derive(Clone)]
pub struct RuntimePre {
    run: ComponentExportIndex,
}

impl RuntimePre {
    /// Finds `run` in the component's `component-runtime` export.
    pub fn new(pre: &InstancePre<NodeState>) -> wasmtime::Result<Self> {
        let component = pre.component();
        let interface = component
            .get_export_index(None, RUNTIME_EXPORT)
            .ok_or_else(|| wasmtime::format_err!("no `{RUNTIME_EXPORT}` export"))?;
        let run = component
            .get_export_index(Some(&interface), "run")
            .ok_or_else(|| wasmtime::format_err!("`{RUNTIME_EXPORT}` exports no `run`"))?;
        Ok(RuntimePre { run })
    }

    /// Its `run`, checked against the expected signature.
    pub fn instantiate(
        &self,
        store: &mut Store<NodeState>,
        instance: &Instance,
    ) -> wasmtime::Result<RuntimeInstance> {
        let run: RunFunc = instance.get_typed_func(&mut *store, self.run)?;
        Ok(RuntimeInstance {
            run,
            states: HashMap::new(),
        })
    }
}

/// An instance, with the state it returned per node.
pub struct RuntimeInstance {
    run: RunFunc,
    states: HashMap<String, Vec<u8>>,
}

impl RuntimeInstance {
    /// Forgets every node's state: a new run starts from empty state.
    pub fn new_run(&mut self) {
        self.states.clear();
    }

    /// Calls `run` for node `node` with `input` (CBOR); returns the output
    /// (CBOR) and keeps the new state for the node's next call.
    pub fn run(
        &mut self,
        store: &mut Store<NodeState>,
        node: &str,
        input: Vec<u8>,
    ) -> wasmtime::Result<Vec<u8>> {
        let state = self.states.get(node).cloned().unwrap_or_default();
        let (result,) = self.run.call(&mut *store, (input, state))?;
        self.states.insert(node.to_string(), result.new_state);
        Ok(result.output)
    }
}
