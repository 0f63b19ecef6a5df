// Runs a composed flow component under V8: transpiled by jco, WASI from
// @bytecodealliance/preview2-shim.
//
// usage: node run.mjs TRANSPILED_DIR FLOW.yaml [INPUT.json|-] [REPEAT]
//        node run.mjs TRANSPILED_DIR --app [INPUT.json|-] [REPEAT]
//   (--app: the flow baked into the app, through `greentic:runner/app@0.1.0`)
//   (TRANSPILED_DIR from `jco transpile APP.wasm -o DIR --name app`)
//
// Runs the flow REPEAT times (default 1) on one instance and prints each run's
// output JSON text, or {"error": {...}} with the runner's error record (and
// stops), exactly as host-shim `--json-errors --repeat` and run.py do.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { errorRecord, turnText } from '../../playground/web/records.js';

const [dir, flowPath, inputArg, repeatArg] = process.argv.slice(2);
const inputPath = inputArg && inputArg !== '-' ? inputArg : undefined;
const repeat = repeatArg ? Number(repeatArg) : 1;
const app = await import(pathToFileURL(resolve(join(dir, 'app.js'))).href);

const optional = (path) => (existsSync(path) ? readFileSync(path, 'utf8') : undefined);
const baked = flowPath === '--app';
const tenant = { env: 'local', tenant: 'default', team: undefined, user: undefined };
const entryJson = inputPath ? readFileSync(inputPath, 'utf8') : '';
const request = baked ? undefined : {
  flow: {
    name: flowPath,
    yaml: readFileSync(flowPath, 'utf8'),
    resolveJson: optional(`${flowPath}.resolve.json`),
    resolveSummaryJson: optional(`${flowPath}.resolve.summary.json`),
    strictTemplating: undefined,
  },
  entryJson,
  bindings: [],
  tenant,
  maxSteps: undefined,
  traceId: '',
  varsJson: '',
  library: [],
  resumeSnapshot: '',
};

try {
  for (let i = 0; i < repeat; i++) {
    const outcome = baked ? app.app.run(entryJson, tenant, '') : app.run.run(request);
    process.stdout.write(turnText(outcome) + '\n');
  }
} catch (e) {
  if (e.payload === undefined) throw e;
  const record = errorRecord(e.payload);
  process.stdout.write(JSON.stringify({ error: record }) + '\n');
  process.exitCode = 1;
}
