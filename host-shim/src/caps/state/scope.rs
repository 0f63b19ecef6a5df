//! Tenant scoping and the key namespace.
//!
//! Every state operation acts for the run's tenant context (`--env`,
//! `--tenant`, `--team`, `--user`). A guest may pass `none` (the run's context
//! is used) or a context that agrees with the run's; one naming another env,
//! tenant, team or user is refused with `permission-denied`.
//!
//! Keys: greentic-state composes
//! `greentic:state:{env}:{tenant}[:{team}][:{user}]:{prefix}:{key}`. The prefix
//! is `{component id}~{shape}`, where the shape says which of team and user are
//! present (`tenant`, `team`, `user`, `team+user`): without it a team-only and a
//! user-only scope with the same id would write the same keys. Ids never hold
//! `:`, `~` or `+`; in the guest's key, `%` and `:` are percent-encoded, so no
//! key can reach into another scope or component.

use greentic_state::{StateKey, TenantCtx};
use greentic_types::{EnvId, TeamId, TenantId, UserId};

/// The guest-supplied context of a state call, reduced to what scoping reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestCtx {
    /// `env`
    pub env: String,
    /// `tenant` / `tenant-id`
    pub tenants: Vec<String>,
    /// `team` / `team-id`
    pub teams: Vec<String>,
    /// `user` / `user-id`
    pub users: Vec<String>,
}

/// An env, tenant, team or user id that is not a greentic id.
#[derive(Debug, thiserror::Error)]
#[error("invalid --{what} `{value}`: {why}")]
pub struct InvalidTenantId {
    /// `env`, `tenant`, `team` or `user`.
    pub what: &'static str,
    /// The id given.
    pub value: String,
    /// What is wrong with it.
    pub why: String,
}

/// The run's tenant context, validated.
#[derive(Debug, Clone)]
pub struct RunTenant {
    ctx: TenantCtx,
}

impl RunTenant {
    /// Validates the ids (greentic ids: letters, digits, `.`, `_`, `-`).
    pub fn new(
        env: &str,
        tenant: &str,
        team: Option<&str>,
        user: Option<&str>,
    ) -> anyhow::Result<Self> {
        let bad = |what: &'static str, value: &str, e: &dyn std::fmt::Display| {
            anyhow::Error::from(InvalidTenantId {
                what,
                value: value.to_string(),
                why: e.to_string(),
            })
        };
        let env_id = EnvId::try_from(env).map_err(|e| bad("env", env, &e))?;
        let tenant_id = TenantId::try_from(tenant).map_err(|e| bad("tenant", tenant, &e))?;
        let team = team
            .map(|t| TeamId::try_from(t).map_err(|e| bad("team", t, &e)))
            .transpose()?;
        let user = user
            .map(|u| UserId::try_from(u).map_err(|e| bad("user", u, &e)))
            .transpose()?;
        Ok(RunTenant {
            ctx: TenantCtx::new(env_id, tenant_id)
                .with_team(team)
                .with_user(user),
        })
    }

    /// The greentic-state context every operation of the run uses.
    pub fn ctx(&self) -> &TenantCtx {
        &self.ctx
    }

    /// Checks a guest-supplied context against the run's; `Err` says what differs.
    pub fn check(&self, guest: &GuestCtx) -> Result<(), String> {
        let run_env = self.ctx.env.as_str();
        if !guest.env.is_empty() && guest.env != run_env {
            return Err(format!(
                "env `{}` is not the run's env `{run_env}`",
                guest.env
            ));
        }
        let run_tenant = self.ctx.tenant_id.as_str();
        if let Some(t) = guest
            .tenants
            .iter()
            .find(|t| !t.is_empty() && *t != run_tenant)
        {
            return Err(format!(
                "tenant `{t}` is not the run's tenant `{run_tenant}`"
            ));
        }
        let run_team = self.ctx.team_id.as_ref().map(|t| t.as_str());
        if let Some(t) = guest.teams.iter().find(|t| Some(t.as_str()) != run_team) {
            return Err(format!(
                "team `{t}` is outside the run's scope ({})",
                run_team.unwrap_or("no team")
            ));
        }
        let run_user = self.ctx.user_id.as_ref().map(|u| u.as_str());
        if let Some(u) = guest.users.iter().find(|u| Some(u.as_str()) != run_user) {
            return Err(format!(
                "user `{u}` is outside the run's scope ({})",
                run_user.unwrap_or("no user")
            ));
        }
        Ok(())
    }

    /// The greentic-state prefix for `component_id` in this scope.
    pub fn namespace(&self, component_id: &str) -> String {
        let shape = match (self.ctx.team_id.is_some(), self.ctx.user_id.is_some()) {
            (false, false) => "tenant",
            (true, false) => "team",
            (false, true) => "user",
            (true, true) => "team+user",
        };
        format!("{component_id}~{shape}")
    }
}

/// The store key for a guest key; `Err` for an empty key.
pub fn store_key(guest_key: &str) -> Result<StateKey, String> {
    if guest_key.is_empty() {
        return Err("the key is empty".into());
    }
    Ok(StateKey::from(
        guest_key.replace('%', "%25").replace(':', "%3A"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guest(env: &str, tenant: &str, team: Option<&str>, user: Option<&str>) -> GuestCtx {
        GuestCtx {
            env: env.into(),
            tenants: vec![tenant.into()],
            teams: team.into_iter().map(String::from).collect(),
            users: user.into_iter().map(String::from).collect(),
        }
    }

    #[test]
    fn only_the_runs_own_scope_is_accepted() {
        let run = RunTenant::new("dev", "acme", Some("ops"), None).unwrap();
        assert!(run.check(&GuestCtx::default()).is_ok());
        assert!(run.check(&guest("dev", "acme", Some("ops"), None)).is_ok());
        assert!(run.check(&guest("", "", None, None)).is_ok());
        assert!(
            run.check(&guest("prod", "acme", None, None))
                .unwrap_err()
                .contains("env `prod`")
        );
        assert!(
            run.check(&guest("dev", "other", None, None))
                .unwrap_err()
                .contains("tenant `other`")
        );
        assert!(
            run.check(&guest("dev", "acme", Some("sales"), None))
                .unwrap_err()
                .contains("team `sales`")
        );
        assert!(
            run.check(&guest("dev", "acme", Some("ops"), Some("bob")))
                .unwrap_err()
                .contains("user `bob`")
        );
    }

    #[test]
    fn namespaces_tell_scopes_apart_and_keys_cannot_escape() {
        let team = RunTenant::new("dev", "acme", Some("x"), None).unwrap();
        let user = RunTenant::new("dev", "acme", None, Some("x")).unwrap();
        let key = store_key("count").unwrap();
        assert_ne!(
            greentic_state::fqn(team.ctx(), &team.namespace("c"), &key),
            greentic_state::fqn(user.ctx(), &user.namespace("c"), &key)
        );
        assert_eq!(store_key("a:b%c").unwrap().as_str(), "a%3Ab%25c");
        assert!(store_key("").is_err());
        assert!(RunTenant::new("dev", "bad:tenant", None, None).is_err());
    }
}
