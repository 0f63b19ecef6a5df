//! `host-shim serve`.

use super::setup::{host_options, state_backend, target};
use crate::engine::OnMiss;
use crate::{Failure, RunSettings};

pub(super) fn serve(args: crate::cli::ServeArgs) -> Result<(), Failure> {
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
