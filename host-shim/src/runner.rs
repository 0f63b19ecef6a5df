//! The runner component, hosted in Wasmtime: WASI plus the node slots, whose
//! calls are forwarded to the node components of the current run.

use greentic_interfaces_wasmtime::component_v0_6::exports::greentic::component::node::{
    InvocationEnvelope, InvocationResult,
};
use greentic_interfaces_wasmtime::component_v0_6::greentic::types_core::core::NodeError;
use wasmtime::Result;
use wasmtime::component::{Component, Instance, Linker, ResourceTable};
use wasmtime::error::Context;
use wasmtime::{Store, StoreContextMut};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::caps::state::StateCtx;
use crate::caps::{Capabilities, HasCapabilities};
use crate::limits::{RunDeadline, StoreLimiter, UNMETERED};
use crate::nodes::NodeSlot;
use compose::policy::Capability;

#[allow(missing_docs, clippy::all)]
mod bindings {
    include!(concat!(env!("OUT_DIR"), "/runner_bindings.rs"));
}

use bindings::RunnerPre;
pub use bindings::exports::greentic::runner::run::{
    ErrorKind, FlowPlan, FlowSource, NodePlan, RunError, RunOutcome, RunRequest, SlotBinding,
    Tenant,
};

/// Number of node slots the runner world imports.
pub const SLOT_COUNT: usize = compose::SLOT_COUNT;

/// What the runner's Store holds: WASI (the instance's own) and what the
/// current run acts on.
pub struct RunnerState {
    wasi: WasiCtx,
    table: ResourceTable,
    run: RunParts,
    /// The runner's memory cap (a composed app: everything in it).
    limiter: StoreLimiter,
}

/// Everything of a runner's store that belongs to one run (its tenant, its
/// node instances): replaced as a whole when the instance serves another run
/// ([`RunnerInstance::clear_run`]), so nothing of one run reaches the next.
struct RunParts {
    slots: Vec<Option<NodeSlot>>,
    /// What the capability imports act on: for the bare runner only the
    /// state store (the flows' own `state.get` / `state.set`); for a
    /// composed flow each capability the composition imports.
    caps: Capabilities,
    /// The run's deadline: the runner is stopped once it has passed.
    deadline: RunDeadline,
}

impl Default for RunParts {
    /// No nodes, no state, no capabilities.
    fn default() -> Self {
        RunParts {
            slots: Vec::new(),
            caps: Capabilities::default(),
            deadline: RunDeadline::none(),
        }
    }
}

impl HasCapabilities for RunnerState {
    fn capabilities(&mut self) -> &mut Capabilities {
        &mut self.run.caps
    }
}

/// What the runner component is linked against.
pub enum Linking {
    /// The bare runner: host-shim serves its node slots.
    Slots,
    /// A composed flow: nodes are inside; the host provides WASI and the
    /// capabilities the composition imports.
    Composed {
        /// The capabilities whose interfaces the composed component imports.
        imports: Vec<Capability>,
    },
}

impl WasiView for RunnerState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl RunnerState {
    fn invoke_slot(
        &mut self,
        slot: usize,
        op: &str,
        envelope: &InvocationEnvelope,
    ) -> Result<InvocationResult, NodeError> {
        match self.run.slots.get_mut(slot).and_then(Option::as_mut) {
            Some(node) => node.invoke(op, envelope),
            None => Err(NodeError {
                code: "empty-slot".into(),
                message: format!("node slot {slot} has no component"),
                retryable: false,
                backoff_ms: None,
                details: None,
            }),
        }
    }
}

/// The runner component, linked once per process.
pub struct RunnerComponent {
    pre: RunnerPre<RunnerState>,
    /// Memory cap of each instance's store.
    memory_bytes: usize,
}

impl RunnerComponent {
    /// Links the runner (or a composed flow, which exports the same API), on
    /// the engine it was compiled for.
    pub fn new(component: &Component, linking: Linking, memory_bytes: usize) -> Result<Self> {
        let mut linker: Linker<RunnerState> = Linker::new(component.engine());
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        let slots = match linking {
            Linking::Slots => {
                crate::caps::add_to_linker(&mut linker, |c| c == Capability::State)?;
                // The runner says whose run it makes; the state store here
                // scopes by the run's tenant already.
                linker.instance(compose::RUN_SCOPE_IMPORT)?.func_wrap(
                    "enter",
                    |_: StoreContextMut<'_, RunnerState>, (_scope,): (String,)| Ok(()),
                )?;
                SLOT_COUNT
            }
            Linking::Composed { imports } => {
                crate::caps::add_to_linker(&mut linker, |c| imports.contains(&c))?;
                0
            }
        };
        for slot in 0..slots {
            linker.instance(&compose::slot_import(slot))?.func_wrap(
                "invoke",
                move |mut store: StoreContextMut<'_, RunnerState>,
                      (op, envelope): (String, InvocationEnvelope)| {
                    Ok((store.data_mut().invoke_slot(slot, &op, &envelope),))
                },
            )?;
        }
        let pre = linker
            .instantiate_pre(component)
            .context("the runner component cannot be linked (is it built from this workspace's runner-core?)")?;
        Ok(RunnerComponent {
            pre: RunnerPre::new(pre)
                .context("the runner component does not export `greentic:runner/run`")?,
            memory_bytes,
        })
    }

    /// A fresh runner instance with the given node slots and state context.
    pub fn instantiate(
        &self,
        slots: Vec<Option<NodeSlot>>,
        state: StateCtx,
    ) -> Result<RunnerInstance> {
        let mut store = self.store(slots, state)?;
        let runner = self
            .pre
            .instantiate(&mut store)
            .context("instantiating the runner")?;
        Ok(RunnerInstance { store, runner })
    }

    /// [`Self::instantiate`] with no slots and no state, also giving the
    /// component instance itself (for [`crate::preinit`]'s snapshot).
    pub(crate) fn instantiate_bare(&self) -> Result<(RunnerInstance, Instance)> {
        let mut store = self.store(Vec::new(), StateCtx::none())?;
        let instance = self
            .pre
            .instance_pre()
            .instantiate(&mut store)
            .context("instantiating the runner")?;
        let runner = bindings::Runner::new(&mut store, &instance)?;
        Ok((RunnerInstance { store, runner }, instance))
    }

    /// A store for one runner instance, its limits and deadline set.
    fn store(&self, slots: Vec<Option<NodeSlot>>, state: StateCtx) -> Result<Store<RunnerState>> {
        let wasi = WasiCtx::builder()
            .inherit_stderr()
            .wall_clock(crate::clock::HostClock)
            .build();
        let mut store = Store::new(
            self.pre.engine(),
            RunnerState {
                wasi,
                table: ResourceTable::new(),
                run: RunParts {
                    slots,
                    caps: Capabilities {
                        state,
                        ..Capabilities::default()
                    },
                    ..RunParts::default()
                },
                limiter: StoreLimiter::for_runner(self.memory_bytes),
            },
        );
        store.limiter(|s| &mut s.limiter);
        // The runner is ours: no fuel metering (its engine has none; a
        // composed app's, which holds nodes, does: their limits are
        // theirs). It stops for its run's deadline and for a Ctrl-C that
        // its nodes did not honour.
        unmetered(&mut store)?;
        store.epoch_deadline_callback(|ctx| {
            if let Some(stop) = ctx.data().run.deadline.passed() {
                return Err(stop.into());
            }
            match crate::limits::interrupted_for() {
                Some(since) if since >= std::time::Duration::from_millis(500) => {
                    Err(crate::limits::LimitError::Interrupted.into())
                }
                _ => Ok(wasmtime::UpdateDeadline::Continue(1)),
            }
        });
        store.set_epoch_deadline(1);
        Ok(store)
    }
}

/// All the fuel there is, on an engine that meters fuel; nothing otherwise.
fn unmetered(store: &mut Store<RunnerState>) -> Result<()> {
    if store.get_fuel().is_ok() {
        store.set_fuel(UNMETERED)?;
    }
    Ok(())
}

/// One instance of the runner and the node slots it calls.
pub struct RunnerInstance {
    store: Store<RunnerState>,
    runner: bindings::Runner,
}

impl RunnerInstance {
    /// The instance's store (for [`crate::preinit`]'s snapshot).
    pub(crate) fn store_mut(&mut self) -> &mut Store<RunnerState> {
        &mut self.store
    }

    /// Validates a flow and returns its plan.
    pub fn plan(&mut self, flow: &FlowSource) -> Result<Result<FlowPlan, RunError>> {
        self.runner
            .greentic_runner_run()
            .call_plan(&mut self.store, flow)
    }

    /// Runs a flow; the outer error is a trap of the runner itself.
    pub fn run(&mut self, request: &RunRequest) -> Result<Result<RunOutcome, RunError>> {
        for slot in self.store.data_mut().run.slots.iter_mut().flatten() {
            slot.new_run();
        }
        self.runner
            .greentic_runner_run()
            .call_run(&mut self.store, request)
    }

    /// Puts node components into the slots (before `run`).
    pub fn set_slots(&mut self, slots: Vec<Option<NodeSlot>>) {
        self.store.data_mut().run.slots = slots;
    }

    /// What the capability imports act on (set before `run`).
    pub fn capabilities(&mut self) -> &mut Capabilities {
        &mut self.store.data_mut().run.caps
    }

    /// The run's deadline.
    pub fn deadline(&self) -> RunDeadline {
        self.store.data().run.deadline
    }

    /// Sets the run's deadline (before `plan` and `run`).
    pub fn set_deadline(&mut self, deadline: RunDeadline) {
        self.store.data_mut().run.deadline = deadline;
    }

    /// Sets what the runner's state-store import acts on (before `run`).
    pub fn set_state(&mut self, state: StateCtx) {
        self.store.data_mut().run.caps.state = state;
    }

    /// Forgets everything of the last run — its node instances (dropped
    /// now), state context and capabilities — so that the instance, with the
    /// flows it has planned, can serve another run, of any tenant.
    pub fn clear_run(&mut self) -> Result<()> {
        self.store.data_mut().run = RunParts::default();
        unmetered(&mut self.store)
    }
}
