//! Pre-initialising the runner of a composition (compose's
//! [`compose::PreInit`]): Wizer instruments the runner component, the
//! instance plans the flows the app bakes, and its memories and globals are
//! written back into the component as its initial state. An instance of the
//! app then starts with those flows parsed and their templates compiled —
//! what a host that instantiates the app per request (`wasmtime serve`)
//! would otherwise pay on every request.
//!
//! Only linear memory and globals are kept: planning must not leave anything
//! in the host (a resource handle, an open stream), and it does not — it
//! calls no import but WASI's random bytes (std's hash keys). Those keys are
//! then the same in every instance of the app.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use wasmtime::component::{Instance, WasmList};
use wasmtime::{Engine, Store};
use wasmtime_wizer::{ComponentInstanceState, Wizer};

use crate::runner::{FlowSource, Linking, RunnerComponent, RunnerState};

/// Memory the runner may use while planning (as a run's default cap).
const PLANNING_MEMORY: usize = 256 << 20;

/// host-shim's [`compose::PreInit`].
#[derive(Debug, Default)]
pub struct RunnerPreInit;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl compose::PreInit for RunnerPreInit {
    fn preinit(
        &self,
        runner: &[u8],
        flows: &[&runner_core::FlowSource],
    ) -> Result<Vec<u8>, BoxError> {
        let wizer = Wizer::new();
        let (context, instrumented) = wizer.instrument_component(runner)?;
        // Winch: the instrumented runner runs one `plan` per flow, once;
        // Cranelift would take seconds to compile it.
        let engine = Engine::new(&greentic_runner_engine::baseline_config())?;
        let component = wasmtime::component::Component::new(&engine, &instrumented)?;
        let linked = RunnerComponent::new(&component, Linking::Slots, PLANNING_MEMORY)?;
        let (mut runner, instance) = linked.instantiate_bare()?;
        for flow in flows {
            if let Err(error) = runner.plan(&wit_source(flow))? {
                return Err(format!("`{}`: {}", flow.name, error.message).into());
            }
        }
        let mut state = Snapshotting {
            store: runner.store_mut(),
            instance,
        };
        Ok(immediately(wizer.snapshot_component(context, &mut state))?)
    }
}

/// The runner's form of a flow source.
fn wit_source(flow: &runner_core::FlowSource) -> FlowSource {
    FlowSource {
        name: flow.name.clone(),
        yaml: flow.yaml.clone(),
        resolve_json: flow.resolve_json.clone(),
        resolve_summary_json: flow.resolve_summary_json.clone(),
        strict_templating: flow.strict_templating,
    }
}

/// Wizer's view of the instance: the accessor functions its instrumentation
/// exports, called synchronously.
struct Snapshotting<'a> {
    store: &'a mut Store<RunnerState>,
    instance: Instance,
}

impl Snapshotting<'_> {
    /// Calls `instance#func`, a `[] -> [R]` accessor of the instrumentation.
    /// Wizer added both, so their absence is a bug of this module.
    fn call<R: wasmtime::component::ComponentType + wasmtime::component::Lift + 'static>(
        &mut self,
        instance: &str,
        func: &str,
    ) -> R {
        let interface = self
            .instance
            .get_export_index(&mut *self.store, None, instance)
            .expect("Wizer's instrumentation exports its accessor instance");
        let index = self
            .instance
            .get_export_index(&mut *self.store, Some(&interface), func)
            .expect("Wizer's instrumentation exports each accessor");
        let accessor = self
            .instance
            .get_typed_func::<(), (R,)>(&mut *self.store, index)
            .expect("Wizer's accessors have the type it reads");
        accessor
            .call(&mut *self.store, ())
            .expect("an accessor reads a global or a memory")
            .0
    }
}

impl ComponentInstanceState for Snapshotting<'_> {
    fn call_func_ret_list_u8(
        &mut self,
        instance: &str,
        func: &str,
        contents: impl FnOnce(&[u8]) + Send,
    ) -> impl Future<Output = ()> + Send {
        let list: WasmList<u8> = self.call(instance, func);
        contents(list.as_le_slice(&*self.store));
        std::future::ready(())
    }

    fn call_func_ret_s32(
        &mut self,
        instance: &str,
        func: &str,
    ) -> impl Future<Output = i32> + Send {
        std::future::ready(self.call(instance, func))
    }

    fn call_func_ret_s64(
        &mut self,
        instance: &str,
        func: &str,
    ) -> impl Future<Output = i64> + Send {
        std::future::ready(self.call(instance, func))
    }

    fn call_func_ret_f32(
        &mut self,
        instance: &str,
        func: &str,
    ) -> impl Future<Output = u32> + Send {
        std::future::ready(self.call::<f32>(instance, func).to_bits())
    }

    fn call_func_ret_f64(
        &mut self,
        instance: &str,
        func: &str,
    ) -> impl Future<Output = u64> + Send {
        std::future::ready(self.call::<f64>(instance, func).to_bits())
    }
}

/// The output of a future that never waits: every call Wizer's snapshot
/// makes through [`Snapshotting`] is synchronous.
fn immediately<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use compose::PreInit;
    use wasmtime::component::Component;

    /// A chain of `n` echo nodes, each with a template to compile.
    fn chain(id: &str, n: usize) -> runner_core::FlowSource {
        let mut yaml = format!("id: {id}\nnodes:\n");
        for i in 0..n {
            yaml.push_str(&format!(
                "  n{i}:\n    echo: {{ v: \"step {i} of {{{{entry.name}}}}\" }}\n"
            ));
        }
        runner_core::FlowSource {
            name: format!("{id}.ygtc"),
            yaml,
            ..Default::default()
        }
    }

    /// What planning `flow` costs `runner` in fuel (instructions, not
    /// time), and the plan.
    fn planning(runner: &[u8], flow: &runner_core::FlowSource) -> (u64, String) {
        let engine = Engine::new(&greentic_runner_engine::baseline_config()).unwrap();
        let component = Component::new(&engine, runner).unwrap();
        let linked = RunnerComponent::new(&component, Linking::Slots, PLANNING_MEMORY).unwrap();
        let (mut instance, _) = linked.instantiate_bare().unwrap();
        let before = instance.store_mut().get_fuel().unwrap();
        let plan = instance.plan(&wit_source(flow)).unwrap().unwrap();
        let spent = before - instance.store_mut().get_fuel().unwrap();
        (spent, format!("{plan:?}"))
    }

    #[test]
    fn the_snapshot_starts_with_its_flows_planned() {
        let runner = std::fs::read(crate::BUILT_RUNNER).unwrap();
        let (main, called) = (chain("main", 30), chain("called", 5));
        let snapshot = RunnerPreInit.preinit(&runner, &[&main, &called]).unwrap();
        let (fresh, fresh_plan) = planning(&runner, &main);
        let (warm, warm_plan) = planning(&snapshot, &main);
        assert_eq!(warm_plan, fresh_plan, "the same plan either way");
        assert!(
            warm * 20 < fresh,
            "planning a baked flow is a cache lookup ({warm} fuel), not a parse ({fresh})"
        );
        // Flows it was not given are planned from their text, as before.
        let (other, _) = planning(&snapshot, &chain("other", 30));
        assert!(other * 2 > fresh, "{other} vs {fresh}");
    }

    #[test]
    fn a_flow_the_runner_refuses_is_named() {
        let runner = std::fs::read(crate::BUILT_RUNNER).unwrap();
        let broken = runner_core::FlowSource {
            name: "broken.ygtc".into(),
            yaml: "id: broken\nnodes: [".into(),
            ..Default::default()
        };
        let error = RunnerPreInit.preinit(&runner, &[&broken]).unwrap_err();
        assert!(error.to_string().contains("`broken.ygtc`"), "{error}");
    }
}
