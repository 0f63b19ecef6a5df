// Runs flows off the page's main thread: the runner component transpiled by
// jco (runner/), its node slots calling the playground's node components,
// transpiled apart (nodes/, wired in slots.js, which records each call as
// `--trace` does), WASI from preview2-shim's browser implementation (shim/),
// state in the page (state.js). One instance of each lives as long as this
// worker, so the counter keeps counting until the page starts a new worker.
import { run } from './runner/runner.js';
import { PALETTE } from './examples.js';
import { references, trace } from './slots.js';
import { errorRecord, turnText } from './records.js';

// A component reference, as the plan reports it, to the name the palette
// knows it by: `oci://ghcr.io/acme/templates:1.0` -> `templates`,
// `components/echo.wasm` -> `echo`.
const shortName = (reference) => {
  const last = reference.split('://').pop().split(/[\\/]/).pop();
  return last.split('@')[0].split(':')[0].replace(/\.wasm$/, '');
};

// A turn as host-shim prints it, and the snapshot that resumes a waiting one.
const printed = (outcome) => ({
  text: turnText(outcome),
  snapshot: outcome.tag === 'waiting' ? outcome.val.snapshotJson : undefined,
});

const handle = ({ flow, resolveJson, entryJson, tenant, varsJson, resume }) => {
  const source = {
    name: 'flow.ygtc',
    yaml: flow,
    resolveJson: resolveJson || undefined,
    resolveSummaryJson: undefined,
    strictTemplating: undefined,
  };
  const plan = run.plan(source);
  const bindings = [];
  for (const component of plan.components) {
    const slot = PALETTE.indexOf(shortName(component));
    if (slot < 0) {
      return {
        error: {
          kind: 'invalid-flow',
          message: `component \`${component}\` is not in the playground (it has ${PALETTE.join(', ')})`,
          node: plan.nodes.find((n) => n.component === component)?.id ?? null,
          code: null,
          line: null,
          column: null,
        },
      };
    }
    bindings.push({ component, slot });
  }
  trace.length = 0;
  references.clear();
  for (const { component, slot } of bindings) references.set(slot, component);
  const started = performance.now();
  const outcome = run.run({
    flow: source,
    entryJson,
    bindings,
    tenant,
    maxSteps: undefined,
    traceId: '',
    varsJson,
    library: [],
    resumeSnapshot: resume || '',
  });
  return {
    ...printed(outcome),
    micros: Math.round((performance.now() - started) * 1000),
    trace: [...trace],
  };
};

self.onmessage = ({ data }) => {
  let reply;
  try {
    reply = handle(data);
  } catch (e) {
    reply = e.payload === undefined
      ? { error: { kind: 'trap', message: String(e), node: null, code: null, line: null, column: null } }
      : { error: errorRecord(e.payload), trace: [...trace] };
  }
  self.postMessage({ id: data.id, ...reply });
};

self.postMessage({ ready: true });
