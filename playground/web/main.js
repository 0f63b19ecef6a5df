// The page: editors, examples, and the worker the runner lives in. A run that
// does not answer within the deadline has its worker terminated (a new one is
// started), so an endless flow never freezes the tab; the step limit (the
// flow's `max_steps`, default 1000) stops most loops before that.
import { EXAMPLES, PALETTE } from './examples.js';

const DEADLINE_MS = Number(new URLSearchParams(location.search).get('deadline') || 5000);
const $ = (id) => document.getElementById(id);
const flowEl = $('flow');
const gutter = $('gutter');

let worker;
let ready = false;
let pending; // { id, timer }
let nextId = 1;
let snapshot = '';

const setStatus = (text) => { $('status').textContent = text; };

function startWorker() {
  ready = false;
  $('run').disabled = true;
  worker = new Worker('worker.js', { type: 'module' });
  worker.onmessage = ({ data }) => {
    if (data.ready) {
      ready = true;
      $('run').disabled = false;
      setStatus('ready');
      return;
    }
    if (!pending || data.id !== pending.id) return;
    clearTimeout(pending.timer);
    pending = undefined;
    show(data);
  };
  worker.onerror = (e) => {
    setStatus(`the runner failed to start: ${e.message}`);
  };
}

function renderGutter(errorLine) {
  const lines = flowEl.value.split('\n').length;
  gutter.replaceChildren(...Array.from({ length: lines }, (_, i) => {
    const div = document.createElement('div');
    div.textContent = String(i + 1);
    if (i + 1 === errorLine) div.className = 'error';
    return div;
  }));
  gutter.scrollTop = flowEl.scrollTop;
}

// Puts the caret at 1-based `line`, `column` of the flow text.
function placeCaret(line, column) {
  const lines = flowEl.value.split('\n');
  let offset = 0;
  for (let i = 0; i < line - 1 && i < lines.length; i++) offset += lines[i].length + 1;
  offset += Math.max(0, (column || 1) - 1);
  flowEl.focus();
  flowEl.setSelectionRange(offset, offset);
}

// The node calls of the last run, as `host-shim run --trace` records them.
function renderTrace(records) {
  $('trace').tBodies[0].replaceChildren(...(records || []).map((r) => {
    const row = document.createElement('tr');
    row.dataset.record = JSON.stringify(r);
    for (const cell of [r.node, r.component, r.outcome, r.micros]) {
      const td = document.createElement('td');
      td.textContent = String(cell);
      row.append(td);
    }
    return row;
  }));
}

function show(reply) {
  renderTrace(reply.trace);
  const out = $('output');
  if (reply.error) {
    const e = reply.error;
    out.className = 'error';
    out.textContent = JSON.stringify({ error: e });
    const where = e.line ? `line ${e.line}, column ${e.column ?? 1}` : '';
    $('error-location').textContent = where ? `${where}${e.node ? ` (node ${e.node})` : ''}: ${e.message}` : '';
    renderGutter(e.line ?? undefined);
    if (e.line) placeCaret(e.line, e.column);
    setStatus(`failed: ${e.kind}`);
    $('reply').hidden = true;
    snapshot = '';
    return;
  }
  out.className = '';
  out.textContent = reply.text;
  $('error-location').textContent = '';
  renderGutter();
  snapshot = reply.snapshot || '';
  $('reply').hidden = !snapshot;
  setStatus(snapshot ? `waiting (${reply.micros} µs)` : `completed in ${reply.micros} µs`);
}

function run(message, resume) {
  if (!ready || pending) return;
  let tenant = $('tenant').value.trim() || 'default';
  const id = nextId++;
  const timer = setTimeout(() => {
    pending = undefined;
    worker.terminate();
    $('output').className = 'error';
    $('output').textContent = `stopped: no answer within ${DEADLINE_MS / 1000} s (the runner was stopped; a new one starts)`;
    setStatus('stopped');
    renderTrace([]);
    $('reply').hidden = true;
    snapshot = '';
    startWorker();
  }, DEADLINE_MS);
  pending = { id, timer };
  setStatus('running…');
  worker.postMessage({
    id,
    flow: flowEl.value,
    resolveJson: flowEl.dataset.resolveJson || '',
    entryJson: message,
    tenant: { env: 'local', tenant, team: undefined, user: undefined },
    varsJson: $('vars').value.trim(),
    resume,
  });
}

function load(example) {
  flowEl.value = example.flow;
  flowEl.dataset.resolveJson = example.resolveJson || '';
  $('input').value = example.input || '';
  $('output').textContent = '';
  $('error-location').textContent = '';
  $('reply').hidden = true;
  snapshot = '';
  renderGutter();
}

for (const example of EXAMPLES) {
  const option = document.createElement('option');
  option.value = example.id;
  option.textContent = example.title;
  $('example').append(option);
}
$('example').onchange = () => load(EXAMPLES.find((e) => e.id === $('example').value));
flowEl.oninput = () => renderGutter();
flowEl.onscroll = () => { gutter.scrollTop = flowEl.scrollTop; };
$('run').onclick = () => run($('input').value.trim(), '');
$('send').onclick = () => run($('message').value.trim(), snapshot);
$('palette').textContent = `Nodes may use: ${PALETTE.join(', ')} (and the runner's native nodes).`;
load(EXAMPLES[0]);
startWorker();
