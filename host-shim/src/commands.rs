//! One function per subcommand; each returns the exit code.
//!
//! Exit codes: 0 success; 1 the flow ran and failed (a node error, a template
//! that did not render, a routing error, the step limit); 2 the inputs are
//! wrong (invalid flow, `--input`, a missing or invalid component).

use std::process::ExitCode;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::cli::{
    CheckArgs, Cli, Command, CompileArgs, Compiler, ComponentArgs, ComposeArgs, RunArgs,
    StateProvider, TelemetryProvider, Templating,
};
use crate::engine::{Filled, OnMiss};
use crate::{CheckReport, Failure, Host, HostOptions, RunSettings};

pub(crate) fn exec(cli: Cli) -> ExitCode {
    let default_filter = match cli.verbose {
        0 => "warn",
        1 => "warn,component=info",
        _ => "info,component=debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    // First Ctrl-C: ask running nodes to cancel (then stop them); second: quit.
    // `serve` handles its signals itself (graceful shutdown).
    if !matches!(cli.command, Command::Serve(_)) {
        let _ = ctrlc::set_handler(|| {
            if crate::limits::interrupted_for().is_some() {
                std::process::exit(130);
            }
            eprintln!(
                "host-shim: interrupted; asking running nodes to stop (Ctrl-C again to quit)"
            );
            crate::limits::interrupt();
        });
    }
    let result = match cli.command {
        Command::Serve(args) => serve(*args),
        Command::Run(args) => run(*args),
        Command::Check(args) => check(args),
        Command::Compose(args) => compose(args),
        Command::Compile(args) => compile(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}

/// The profile named by `--profile`, with `--allow-host` added.
fn profile(common: &ComponentArgs) -> Result<compose::policy::Profile, Failure> {
    let mut profile = compose::policy::Profile::select(&common.profile)
        .map_err(|e| Failure::Invalid(e.into()))?;
    profile.allow_hosts(&common.allow_hosts);
    Ok(profile)
}

/// `--state`, else memory; with `--session`, a file that outlives the process.
fn state_backend(
    common: &ComponentArgs,
    session: bool,
) -> Result<crate::caps::state::StateBackend, Failure> {
    use crate::caps::state::StateBackend;
    match &common.state {
        Some(backend) => Ok(backend.clone()),
        None if session => {
            let dir = std::env::var_os("GREENTIC_DATA_DIR")
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("XDG_DATA_HOME")
                        .map(PathBuf::from)
                        .or_else(|| {
                            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share"))
                        })
                        .map(|base| base.join("greentic-runner"))
                })
                .ok_or_else(|| {
                    Failure::Invalid(anyhow::anyhow!(
                        "--session needs a state backend that outlives this process: pass --state file:PATH or redis://…"
                    ))
                })?;
            std::fs::create_dir_all(&dir).map_err(|e| {
                Failure::Invalid(anyhow::anyhow!("cannot create `{}`: {e}", dir.display()))
            })?;
            Ok(StateBackend::File(dir.join("state.redb")))
        }
        None => Ok(StateBackend::Memory),
    }
}

fn host(common: &ComponentArgs) -> Result<Host, Failure> {
    host_with_state(common, state_backend(common, false)?)
}

fn host_with_state(
    common: &ComponentArgs,
    state: crate::caps::state::StateBackend,
) -> Result<Host, Failure> {
    Host::new(host_options(common, state)?).map_err(Failure::Invalid)
}

fn host_options(
    common: &ComponentArgs,
    state: crate::caps::state::StateBackend,
) -> Result<HostOptions, Failure> {
    let profile = profile(common)?;
    let secrets =
        crate::caps::secrets::SecretSource::new(common.secrets_file.as_deref(), &common.secrets)
            .map_err(Failure::Invalid)?;
    Ok(HostOptions {
        secrets,
        state,
        profile,
        component_dirs: common.components.clone(),
        node_limits: crate::limits::NodeLimits {
            wall_time: std::time::Duration::from_millis(common.node_timeout_ms),
            fuel: common.node_fuel,
            memory_bytes: (common.node_memory_mb as usize) << 20,
            max_payload: common.max_payload,
        },
        runner: common.runner.clone(),
        state_bindings: Default::default(),
        http_roots: crate::caps::http::TrustedRoots::from_pem_files(&common.http_ca)
            .map_err(Failure::Invalid)?,
        runner_memory_bytes: usize::try_from(common.runner_memory_mb)
            .ok()
            .and_then(|mb| mb.checked_mul(1 << 20))
            .ok_or_else(|| {
                Failure::Invalid(anyhow::anyhow!("invalid --runner-memory-mb: too large"))
            })?,
        cache: !common.no_cache,
        on_miss: match common.compiler {
            Compiler::Auto => OnMiss::Baseline,
            Compiler::Cranelift => OnMiss::Optimize,
        },
        quiet: common.quiet,
        stub_missing: common.stub_missing,
        strict_templating: common.templating.map(|t| t == Templating::Strict),
        shared_state: None,
        pooling_allocator: false,
        fresh_runner_per_run: common.fresh_runner,
    })
}

fn run(mut args: RunArgs) -> Result<(), Failure> {
    args.common.flow = flow_file(&args.common.flow)?;
    let entry = match args.input.as_deref() {
        None => "{}".to_string(),
        Some(text) => match text.strip_prefix('@') {
            Some(path) => std::fs::read_to_string(path).map_err(|e| {
                Failure::Invalid(anyhow::anyhow!("cannot read --input file `{path}`: {e}"))
            })?,
            None => text.to_string(),
        },
    };
    // Checked here too, so the message can name the option.
    if let Err(e) = serde_json::from_str::<serde_json::Value>(&entry) {
        return Err(Failure::Invalid(anyhow::anyhow!(
            "invalid --input JSON: {e}"
        )));
    }
    let vars = parse_vars(&args.vars)?;
    let state = state_backend(&args.common, args.session.is_some())?;
    if args.session.is_some()
        && state == crate::caps::state::StateBackend::Memory
        && !args.common.quiet
    {
        eprintln!("warning: --state memory keeps the session only while this process runs");
    }
    let mut host = host_with_state(&args.common, state)?;
    let settings = RunSettings {
        env: args.scope.env.clone(),
        tenant: args.scope.tenant.clone(),
        team: args.scope.team.clone(),
        user: args.scope.user.clone(),
        max_steps: args.max_steps,
        progress: args.progress
            || (!args.no_progress && std::io::IsTerminal::is_terminal(&std::io::stderr())),
        observer: args.trace.then(|| {
            std::sync::Arc::new(crate::nodes::StderrTrace)
                as std::sync::Arc<dyn crate::nodes::NodeObserver>
        }),
        session: args.session.clone().map(|id| crate::SessionSettings {
            id,
            ttl: args.session_ttl,
            wait: args.session_wait,
            restart: args.new_session,
        }),
        vars,
        // A CLI run is stopped by Ctrl-C; each node has its own budget.
        time_limit: None,
    };
    let outputs = match &args.composed {
        Some(app) => host.run_composed(app, &args.common.flow, &entry, &settings, args.repeat),
        None => host.run_file(&args.common.flow, &entry, &settings, args.repeat),
    };
    optimize_later(&host);
    for output in outputs {
        match output {
            Ok(turn) => {
                if let crate::Turn::Waiting {
                    session: None,
                    node,
                    ..
                } = &turn
                    && !args.common.quiet
                {
                    eprintln!(
                        "host-shim: the run waits at node `{node}` for the next message; run it with --session ID to continue it"
                    );
                }
                let value = turn.to_json()?;
                if args.pretty {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&value).expect("a JSON value serialises")
                    );
                } else {
                    println!("{value}");
                }
            }
            Err(failure) => {
                if args.json_errors {
                    println!("{}", failure.to_json());
                }
                return Err(failure);
            }
        }
    }
    Ok(())
}

/// `--var NAME=VALUE`: VALUE is JSON when it parses as JSON, else a string.
fn parse_vars(specs: &[String]) -> Result<serde_json::Map<String, Value>, Failure> {
    let mut vars = serde_json::Map::new();
    for spec in specs {
        let Some((name, value)) = spec.split_once('=').filter(|(n, _)| !n.is_empty()) else {
            return Err(Failure::Invalid(anyhow::anyhow!(
                "invalid --var `{spec}`: expected NAME=VALUE"
            )));
        };
        let value =
            serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()));
        vars.insert(name.to_string(), value);
    }
    Ok(vars)
}

/// What FLOW names: a flow file, a pack directory or a `.gtpack` (with
/// `#<flow id>`); archives are unpacked into the compile cache's `packs/`.
fn target(flow: &Path) -> Result<compose::pack::Target, Failure> {
    let cache = crate::engine::ComponentCache::default_dir()
        .unwrap_or_else(|| std::env::temp_dir().join("greentic-runner"));
    compose::pack::Target::parse(flow, &cache).map_err(|e| Failure::Invalid(e.into()))
}

/// The flow file FLOW stands for (a pack's entry flow, or the named one).
fn flow_file(flow: &Path) -> Result<PathBuf, Failure> {
    target(flow)?
        .flow_file()
        .map_err(|e| Failure::Invalid(e.into()))
}

fn check(args: CheckArgs) -> Result<(), Failure> {
    let mut host = host(&args.common)?;
    let checked = check_with(&mut host, args);
    optimize_later(&host);
    checked
}

/// `compile`: fills the cache with the optimised artifacts of every component
/// the targets use, and the runner's when the build's does not fit.
fn compile(args: CompileArgs) -> Result<(), Failure> {
    let host = Host::new(HostOptions {
        component_dirs: args.components.clone(),
        on_miss: OnMiss::Optimize,
        quiet: true,
        ..HostOptions::default()
    })
    .map_err(Failure::Invalid)?;
    let mut components = vec![PathBuf::from(crate::BUILT_RUNNER)];
    let mut failed = 0usize;
    for target in &args.targets {
        match compile_target_components(&host, target) {
            Ok(found) => components.extend(found),
            Err(failure) => {
                failed += 1;
                eprintln!("error: {}: {failure}", target.display());
            }
        }
    }
    // One entry per file, however it was named.
    let mut components: Vec<PathBuf> = components
        .into_iter()
        .map(|c| std::fs::canonicalize(&c).unwrap_or(c))
        .collect();
    components.sort();
    components.dedup();
    let cache = host.component_cache();
    let (mut compiled, mut there) = (0usize, 0usize);
    for component in &components {
        match cache.fill(component) {
            Ok(Filled::Compiled) => {
                compiled += 1;
                if !args.quiet {
                    eprintln!("compiled  {}", component.display());
                }
            }
            Ok(Filled::AlreadyThere) => there += 1,
            Ok(Filled::InProgress) => {
                if !args.quiet {
                    eprintln!(
                        "skipped   {} (another process compiles it)",
                        component.display()
                    );
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: {e:#}");
            }
        }
    }
    if !args.quiet {
        eprintln!(
            "{} components: {compiled} compiled, {there} already compiled; cache {}",
            components.len(),
            cache.dir().map_or("-".into(), |d| d.display().to_string())
        );
    }
    if failed > 0 {
        return Err(Failure::Invalid(anyhow::anyhow!(
            "{failed} targets or components could not be compiled"
        )));
    }
    Ok(())
}

/// The component files `target` (a `.wasm`, a flow, a directory of flows or
/// a pack) uses.
fn compile_target_components(host: &Host, target: &Path) -> Result<Vec<PathBuf>, Failure> {
    if target.extension().is_some_and(|e| e == "wasm") {
        return Ok(vec![target.to_path_buf()]);
    }
    let flows = self::target(target)?
        .flow_files()
        .map_err(|e| Failure::Invalid(e.into()))?;
    let mut components = Vec::new();
    for flow in flows {
        components.extend(host.flow_components(&flow)?);
    }
    Ok(components)
}

/// Has the components this process compiled with Winch compiled by Cranelift
/// into the cache, in a process of their own, so the next run finds them.
fn optimize_later(host: &Host) {
    let cache = host.component_cache();
    let (Some(dir), Ok(exe)) = (cache.dir(), std::env::current_exe()) else {
        return;
    };
    crate::engine::compile_in_background(&exe, dir, &cache.take_baseline_compiled());
}

fn check_with(host: &mut Host, mut args: CheckArgs) -> Result<(), Failure> {
    match target(&args.common.flow)? {
        // A pack: every flow it lists.
        compose::pack::Target::Pack(pack, None) => {
            let files: Vec<PathBuf> = pack.flows.iter().map(|f| f.file.clone()).collect();
            return check_files(host, &files, &pack.root, args.json, args.common.quiet);
        }
        // A flow file, or a plain directory of flows.
        compose::pack::Target::Flow(path) => args.common.flow = path,
        target => args.common.flow = target.flow_file().map_err(|e| Failure::Invalid(e.into()))?,
    }
    if args.common.flow.is_dir() {
        return check_dir(host, &args.common.flow, args.json, args.common.quiet);
    }
    let report = host.check_file(&args.common.flow)?;
    if !args.common.quiet && !args.json {
        for note in &report.notes {
            eprintln!("note: {note}");
        }
        for stub in &report.stubbed {
            eprintln!("note: {stub}: not found; the echo component stands in");
        }
    }
    let record = report_json(&report);
    println!(
        "{}",
        serde_json::to_string_pretty(&record).expect("a JSON value serialises")
    );
    Ok(())
}

fn report_json(report: &CheckReport) -> Value {
    let plan = &report.plan;
    let nodes: Vec<Value> = plan
        .nodes
        .iter()
        .map(|n| {
            let mut node = json!({"id": n.id, "component": n.component, "operation": n.operation});
            if n.component.is_empty() {
                node = json!({"id": n.id, "native": n.operation});
            }
            if let Some(id) = &n.component_id {
                node["component_id"] = json!(id);
            }
            if let Some(digest) = &n.digest {
                node["digest"] = json!(digest);
            }
            node
        })
        .collect();
    let mut out =
        json!({"id": plan.id, "start": plan.start, "nodes": nodes, "components": plan.components});
    if !plan.calls.is_empty() {
        out["calls"] = json!(plan.calls);
    }
    if !report.missing_flows.is_empty() {
        out["missing_flows"] = json!(report.missing_flows);
    }
    if !report.notes.is_empty() {
        out["notes"] = json!(report.notes);
    }
    if !report.stubbed.is_empty() {
        out["stubbed"] = json!(report.stubbed);
    }
    out
}

/// `check DIR`: every flow file under `dir` (`*.ygtc`, `*.yaml`, `*.yml` with a
/// top-level `nodes:`), one line each and a summary; exit 2 if any failed.
fn check_dir(host: &mut Host, dir: &Path, as_json: bool, quiet: bool) -> Result<(), Failure> {
    let files = compose::pack::flow_files_in(dir)
        .map_err(|e| Failure::Invalid(anyhow::anyhow!("cannot read `{}`: {e}", dir.display())))?;
    check_files(host, &files, dir, as_json, quiet)
}

/// Checks `files` (of `dir`), one line each and a summary; exit 2 if any failed.
fn check_files(
    host: &mut Host,
    files: &[PathBuf],
    dir: &Path,
    as_json: bool,
    quiet: bool,
) -> Result<(), Failure> {
    let (mut ok, mut failed) = (0usize, 0usize);
    let mut records = Vec::new();
    for file in files {
        match host.check_file(file) {
            Ok(report) => {
                ok += 1;
                let plan = &report.plan;
                if as_json {
                    let mut record = report_json(&report);
                    record["file"] = json!(file.display().to_string());
                    record["ok"] = json!(true);
                    records.push(record);
                } else {
                    let stubbed = if report.stubbed.is_empty() {
                        String::new()
                    } else {
                        format!(", {} stubbed", report.stubbed.len())
                    };
                    println!(
                        "ok    {}  ({}: {} nodes, {} components{stubbed})",
                        file.display(),
                        plan.id,
                        plan.nodes.len(),
                        plan.components.len()
                    );
                    if !quiet {
                        for note in &report.notes {
                            println!("      note: {note}");
                        }
                    }
                }
            }
            Err(failure) => {
                failed += 1;
                if as_json {
                    records.push(json!({"file": file.display().to_string(), "ok": false, "error": failure.to_string(), "exit": failure.exit_code()}));
                } else {
                    println!("FAIL  {}\n      {failure}", file.display());
                }
            }
        }
    }
    if as_json {
        let out = json!({"flows": records, "ok": ok, "failed": failed});
        println!(
            "{}",
            serde_json::to_string_pretty(&out).expect("a JSON value serialises")
        );
    } else {
        println!("{} flows: {ok} ok, {failed} failed", files.len());
    }
    if failed > 0 {
        return Err(Failure::Invalid(anyhow::anyhow!(
            "{failed} of {} flows under `{}` failed the check",
            files.len(),
            dir.display()
        )));
    }
    Ok(())
}

fn compose(mut args: ComposeArgs) -> Result<(), Failure> {
    args.common.flow = flow_file(&args.common.flow)?;
    let profile = profile(&args.common)?;
    let wiring = match args.state_provider {
        StateProvider::Import => compose::StateWiring::Import,
        StateProvider::Memory => compose::StateWiring::Memory,
    };
    let telemetry = match args.telemetry {
        TelemetryProvider::Stderr => compose::TelemetryWiring::Stderr,
        TelemetryProvider::Import => compose::TelemetryWiring::Import,
    };
    if !args.http && args.scope != crate::cli::TenantArgs::default() {
        return Err(Failure::Invalid(anyhow::anyhow!(
            "--env/--tenant/--team/--user set who an --http app's runs act for; add --http"
        )));
    }
    let http = args.http.then(|| compose::HttpSettings {
        env: args.scope.env.clone(),
        tenant: args.scope.tenant.clone(),
        team: args.scope.team.clone(),
        user: args.scope.user.clone(),
        trust_tenant_headers: args.trust_tenant_headers,
        max_body: args.max_body,
    });
    let options = compose::ComposeOptions {
        telemetry,
        profile,
        state: wiring,
        deny_unapproved: args.deny_unapproved,
        http,
    };
    let composition =
        crate::compose_file(&args.common.flow, args.common.components.clone(), &options)?;
    std::fs::write(&args.output, &composition.bytes).map_err(|e| {
        Failure::Invalid(anyhow::anyhow!(
            "cannot write `{}`: {e}",
            args.output.display()
        ))
    })?;
    if !args.common.quiet {
        for node in &composition.nodes {
            let state = match &node.state {
                compose::StateDecision::None => "no state".to_string(),
                compose::StateDecision::Imported => "state: the app's import".to_string(),
                compose::StateDecision::Memory => "state: in-memory, its own".to_string(),
                compose::StateDecision::Denied(why) => format!("state: denied ({why})"),
            };
            let mut extra = String::new();
            if node.abi != compose::NodeAbi::Node06 {
                extra.push_str(&format!(", adapted from `{}`", node.abi.export()));
            }
            if node.logs_to_stderr {
                extra.push_str(", logs: stderr part");
            }
            if !node.denied.is_empty() {
                extra.push_str(&format!(", refused: {}", node.denied.join(", ")));
            }
            if !node.imported.is_empty() {
                extra.push_str(&format!(
                    ", the app's imports: {}",
                    node.imported.join(", ")
                ));
            }
            eprintln!(
                "host-shim: slot {} <- {} ({}), {state}{extra}",
                node.slot,
                node.reference,
                node.path.display()
            );
        }
        eprintln!("host-shim: imports: {}", composition.imports.join(", "));
        eprintln!(
            "host-shim: wrote {} ({} bytes)",
            args.output.display(),
            composition.bytes.len()
        );
    }
    Ok(())
}

fn serve(args: crate::cli::ServeArgs) -> Result<(), Failure> {
    let invalid = |message: String| Failure::Invalid(anyhow::anyhow!(message));
    let target = match target(&args.common.flow)? {
        compose::pack::Target::Pack(pack, None) => pack.root,
        compose::pack::Target::Pack(_, Some(_)) => {
            return Err(invalid(
                "serve takes a whole pack (its flows are served by id): drop `#flow`".into(),
            ));
        }
        compose::pack::Target::Flow(path) => path,
    };
    use crate::auth::{Auth, JwtVerifier, Principal};
    use crate::cli::AuthMode;
    let loopback = args.addr.ip().is_loopback();
    if args.trust_tenant_headers && args.auth != AuthMode::None {
        return Err(invalid(
            "--trust-tenant-headers is for --auth none: with credentials, the credential says who"
                .into(),
        ));
    }
    if args.auth == AuthMode::None && !loopback && !args.i_am_behind_a_gateway {
        return Err(invalid(format!(
            "{} on {}: without credentials (--auth none) serving is for loopback only; use --auth tokens|jwt, or --i-am-behind-a-gateway when a gateway authenticates clients",
            if args.trust_tenant_headers {
                "--trust-tenant-headers lets any client act for any tenant"
            } else {
                "every client would act for the --tenant flags"
            },
            args.addr,
        )));
    }
    if args.trust_tenant_headers && !args.common.quiet {
        eprintln!(
            "warning: --trust-tenant-headers: the tenant is whatever x-greentic-tenant says; only a gateway that sets it may reach {}",
            args.addr
        );
    }
    let fixed = Principal {
        credential: "server".into(),
        env: args.scope.env.clone(),
        tenant: args.scope.tenant.clone(),
        team: args.scope.team.clone(),
        user: args.scope.user.clone(),
        flows: None,
        max_concurrent: None,
        rps: None,
    };
    let auth = match args.auth {
        AuthMode::None if args.trust_tenant_headers => Auth::TrustHeaders(fixed),
        AuthMode::None => Auth::Fixed(fixed),
        AuthMode::Tokens => {
            let file = args
                .tokens
                .as_deref()
                .ok_or_else(|| invalid("--auth tokens needs --tokens FILE".into()))?;
            Auth::Tokens(crate::auth::read_tokens(file).map_err(Failure::Invalid)?)
        }
        AuthMode::Jwt => Auth::Jwt(
            JwtVerifier::new(
                args.jwt_key.as_deref(),
                args.jwks.as_deref(),
                args.jwt_issuer.clone(),
                args.jwt_audience.clone(),
                args.scope.env.clone(),
            )
            .map_err(Failure::Invalid)?,
        ),
    };
    let metrics_token = match &args.metrics_token_file {
        None => None,
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .map_err(|e| invalid(format!("cannot read `{}`: {e}", file.display())))?;
            Some(crate::auth::parse_sha256(&text).map_err(Failure::Invalid)?)
        }
    };
    let state = state_backend(&args.common, false)?;
    if state == crate::caps::state::StateBackend::Memory && !args.common.quiet {
        eprintln!("note: --state memory: state and sessions live as long as this server");
    }
    let common = args.common;
    let settings = RunSettings {
        env: args.scope.env,
        tenant: args.scope.tenant,
        team: args.scope.team,
        user: args.scope.user,
        max_steps: args.max_steps,
        // The run is stopped at --run-timeout, not only no longer waited for.
        time_limit: Some(args.run_timeout),
        ..RunSettings::default()
    };
    // Checked once here so a bad flag fails at start, not per request.
    host_options(&common, state.clone())?;
    crate::serve::serve(crate::serve::ServeOptions {
        target,
        addr: args.addr,
        // A server lives long: its components get optimised code from the start.
        host: Box::new(move || {
            let mut options =
                host_options(&common, state.clone()).map_err(|f| anyhow::anyhow!("{f}"))?;
            options.on_miss = OnMiss::Optimize;
            Ok(options)
        }),
        settings,
        auth,
        metrics_token,
        credential_max_concurrent: args.credential_max_concurrent,
        credential_rps: args.credential_rps,
        max_concurrent: args.max_concurrent,
        max_body: args.max_body,
        run_timeout: args.run_timeout,
        shutdown_timeout: args.shutdown_timeout,
        session_ttl: args.session_ttl,
        session_wait: args.session_wait,
        io_threads: args.io_threads,
        header_timeout: args.header_timeout,
        body_timeout: args.body_timeout,
        max_connections: args.max_connections,
        allowed_hosts: args.allowed_hosts,
        rescan_every: args.rescan_interval,
    })
    .map_err(Failure::Invalid)
}
