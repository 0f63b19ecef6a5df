"""Runs a composed flow component under wasmtime-py (its own Wasmtime engine).

usage: python3 run.py APP.wasm FLOW.yaml [INPUT.json|-] [REPEAT]
       python3 run.py APP.wasm --app [INPUT.json|-] [REPEAT]
With --app, runs the flow baked into the app (`greentic:runner/app@0.1.0`)
instead of passing FLOW.yaml to `greentic:runner/run@0.1.0`.

Runs the flow REPEAT times (default 1) on one instance and prints each run's
output JSON text, or {"error": {...}} with the runner's error record (and
stops), exactly as host-shim `--json-errors --repeat` and run.mjs do.
"""

import json
import os
import sys

from wasmtime import Config, Engine, Store, WasiConfig
from wasmtime.component import Component, Linker, Record, Variant


def flow_request(flow_path, input_path):
    yaml = None
    if flow_path != "--app":
        with open(flow_path, encoding="utf-8") as f:
            yaml = f.read()
    sidecar = flow_path + ".resolve.json"
    resolve = None
    if os.path.isfile(sidecar):
        with open(sidecar, encoding="utf-8") as f:
            resolve = f.read()
    entry = ""
    if input_path:
        with open(input_path, encoding="utf-8") as f:
            entry = f.read()
    return yaml, resolve, entry


def secret_get(_store, key):
    """`greentic:secrets-store/secrets-store@1.0.0#get`: the value of
    `GREENTIC_SECRET_<KEY>` (as host-shim reads it), or none."""
    name = "GREENTIC_SECRET_" + "".join(c.upper() if c.isalnum() else "_" for c in key)
    value = os.environ.get(name)
    # ok (option<list<u8>>) and err (an enum) lift to different Python types,
    # so the ok value is returned untagged.
    return None if value is None else value.encode()


def http_allowed(url):
    """Hosts the app's host lets components reach: `GREENTIC_HTTP_ALLOW`
    (comma-separated `host`, `host:port`, `host:*`), as host-shim's
    `--allow-host`; nothing when unset."""
    from urllib.parse import urlsplit
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    for pattern in filter(None, os.environ.get("GREENTIC_HTTP_ALLOW", "").split(",")):
        name, _, want = pattern.partition(":")
        if name == host and (want in ("", "*") or want == str(port)):
            return True
    return False


def http_send(_store, req, opts, _ctx):
    """`greentic:http/http-client@1.1.0#send` with urllib: allowed hosts
    only, the request's timeout (default 5 s), no redirects followed."""
    import urllib.error
    import urllib.request
    url = req.url
    if not http_allowed(url):
        return Variant("err", record(code="denied", message=f"host of {url} is not allowed"))
    timeout = (opts.__dict__.get("timeout-ms") if opts else None) or 5000

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    request = urllib.request.Request(url, data=bytes(req.body) if req.body is not None else None,
                                     method=req.method, headers=dict(req.headers))
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=timeout / 1000) as response:
            status, headers, body = response.status, list(response.headers.items()), response.read()
    except urllib.error.HTTPError as e:
        status, headers, body = e.code, list(e.headers.items()), e.read()
    except (urllib.error.URLError, OSError) as e:
        return Variant("err", record(code="unavailable", message=str(e)))
    return Variant("ok", record(status=status, headers=[(k.lower(), v) for k, v in headers], body=body))


def record(**fields):
    r = Record()
    for name, value in fields.items():
        setattr(r, name, value)
    return r


def error_record(err):
    # Field order matches the WIT record; enums arrive as their WIT names.
    get = lambda name: getattr(err, name, None)
    return {
        "kind": get("kind"),
        "message": get("message"),
        "node": get("node"),
        "code": get("code"),
        "line": get("line"),
        "column": get("column"),
    }


def main():
    app, flow_path = sys.argv[1], sys.argv[2]
    input_path = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] != "-" else None
    repeat = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    yaml, resolve, entry = flow_request(flow_path, input_path)

    engine = Engine(Config())
    store = Store(engine)
    store.set_wasi(WasiConfig())
    linker = Linker(engine)
    linker.add_wasip2()
    component = Component.from_file(engine, app)
    # Defined for every app; only apps whose components read secrets import it.
    linker.root().add_instance("greentic:secrets-store/secrets-store@1.0.0").add_func("get", secret_get)
    linker.root().add_instance("greentic:http/http-client@1.1.0").add_func("send", http_send)
    instance = linker.instantiate(store, component)
    tenant = record(env="local", tenant="default", team=None, user=None)
    if flow_path == "--app":
        app_iface = instance.get_export_index(store, "greentic:runner/app@0.1.0")
        app_run = instance.get_func(store, instance.get_export_index(store, "run", app_iface))
        return print_turns(repeat, lambda: app_run(store, entry, tenant, ""), app_run, store)
    run_iface = instance.get_export_index(store, "greentic:runner/run@0.1.0")
    run = instance.get_func(store, instance.get_export_index(store, "run", run_iface))

    summary = None
    if os.path.exists(flow_path + ".resolve.summary.json"):
        with open(flow_path + ".resolve.summary.json", encoding="utf-8") as f:
            summary = f.read()
    flow = record(
        name=flow_path,
        yaml=yaml,
        **{"resolve-json": resolve, "resolve-summary-json": summary, "strict-templating": None},
    )
    request = record(
        flow=flow,
        **{"entry-json": entry, "bindings": [], "tenant": tenant, "max-steps": None, "trace-id": "",
           "vars-json": "", "library": [], "resume-snapshot": ""},
    )
    return print_turns(repeat, lambda: run(store, request), run, store)


def print_turns(repeat, call, func, store):
    """Runs `call` `repeat` times and prints each turn as host-shim does;
    1 after the first error."""
    for _ in range(repeat):
        result = call()
        func.post_return(store)
        # wasmtime-py tags a result only when ok and err lift to the same Python
        # type; here ok is the run-outcome variant and err a Record.
        if isinstance(result, Variant) and result.tag in ("ok", "err"):
            tag, payload = result.tag, result.payload
        else:
            tag, payload = ("err" if isinstance(result, Record) else "ok"), result
        if tag != "ok":
            error = {"error": error_record(payload)}
            sys.stdout.write(json.dumps(error, ensure_ascii=False, separators=(",", ":")) + "\n")
            return 1
        sys.stdout.write(printed(payload) + "\n")
    return 0


def printed(outcome):
    """As host-shim prints a turn: the output, or the waiting record."""
    # run-outcome's cases lift to different Python types (str, Record), so
    # wasmtime-py returns the payload untagged; a tagged one is accepted too.
    if isinstance(outcome, Variant):
        outcome = outcome.payload
    if isinstance(outcome, str):
        return outcome
    waiting = outcome
    record = {"status": "waiting", "node": waiting.node}
    if waiting.reason is not None:
        record["reason"] = waiting.reason
    record["output"] = json.loads(getattr(waiting, "output-json"))
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


if __name__ == "__main__":
    sys.exit(main())
