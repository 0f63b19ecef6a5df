// What a turn of the runner's `run` export prints, exactly as
// `host-shim run --json-errors` prints it: shared by the playground's worker
// and the jco portability harness (tests/portability/run.mjs).

/// A turn: a completed run's output JSON text, or the waiting record.
export function turnText(outcome) {
  if (outcome.tag === 'completed') return outcome.val;
  const w = outcome.val;
  const record = { status: 'waiting', node: w.node };
  if (w.reason !== undefined && w.reason !== null) record.reason = w.reason;
  record.output = JSON.parse(w.outputJson);
  return JSON.stringify(record);
}

/// The runner's error record (a thrown error's `payload`), field order as in
/// the WIT, absent options null.
export function errorRecord(err) {
  return {
    kind: err.kind,
    message: err.message,
    node: err.node ?? null,
    code: err.code ?? null,
    line: err.line ?? null,
    column: err.column ?? null,
  };
}
