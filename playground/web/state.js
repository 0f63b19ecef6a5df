// The in-page state store behind `greentic:state/state-store@1.0.0`, for the
// runner (flow-level state) and the node components that declare state: a
// Map, one namespace per component (as host-shim and `compose` give them),
// within the scope of the run the runner entered (`run-scope`: its tenant).
const entries = new Map();
let scope = '';
let owner = 'runner';

/// `greentic:runner/run-scope`: the runner enters each run's scope.
export const runScope = {
  enter(s) { scope = s; },
};

/// Runs `call` as component `index`'s (its state calls go to its namespace).
export function inComponent(index, call) {
  const before = owner;
  owner = `slot-${index}`;
  try {
    return call();
  } finally {
    owner = before;
  }
}

const where = (key) => JSON.stringify([scope, owner, key]);

export const stateStore = {
  read(key) {
    const bytes = entries.get(where(key));
    if (bytes === undefined) {
      const error = new Error(`no state for \`${key}\``);
      error.payload = { code: 'not-found', message: `no state for \`${key}\`` };
      throw error;
    }
    return bytes;
  },
  write(key, bytes) {
    entries.set(where(key), new Uint8Array(bytes));
    return 'ok';
  },
  delete(key) {
    entries.delete(where(key));
    return 'ok';
  },
};
