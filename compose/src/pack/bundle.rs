//! A greentic bundle directory, as greentic-start lays it out: provider packs
//! under `providers/<domain>/`, the app pack at `packs/default.gtpack` (or
//! a `packs/default/` directory), and per-tenant app packs at
//! `packs/{tenant}/default.gtpack` and `packs/{tenant}/{team}/default.gtpack`
//! (greentic-start's lookup order: team, tenant, default). `bundle.yaml` is
//! not read.

use std::path::{Path, PathBuf};

use super::error::{PackError, err};

/// What a bundle holds for one domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// The app pack.
    pub app: PathBuf,
    /// The domain's provider packs (`.gtpack` files and pack directories), sorted.
    pub providers: Vec<PathBuf>,
    /// App packs of one tenant (or one team of it), sorted.
    pub tenant_apps: Vec<TenantApp>,
}

/// An app pack for one tenant, or one team of a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantApp {
    /// The tenant.
    pub tenant: String,
    /// The team, if the pack is a team's.
    pub team: Option<String>,
    /// The pack (`.gtpack` or directory).
    pub pack: PathBuf,
}

/// `dir/default.gtpack` or a `dir/default/` pack directory, if there is one.
fn default_pack(dir: &Path) -> Option<PathBuf> {
    [dir.join("default.gtpack"), dir.join("default")]
        .into_iter()
        .find(|p| p.is_file() || p.join("pack.yaml").is_file())
}

/// The sub-directories of `dir` (names and paths), sorted; none if unreadable.
fn subdirs(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut found: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
        .filter(|(name, path)| name != "default" || !path.join("pack.yaml").is_file())
        .collect();
    found.sort();
    found
}

impl Bundle {
    /// The bundle at `dir` for `domain` (`messaging`), if `dir` has a
    /// `providers/<domain>/` folder; an error when it has no app pack.
    pub fn open(dir: &Path, domain: &str) -> Result<Option<Bundle>, PackError> {
        let folder = dir.join("providers").join(domain);
        if !folder.is_dir() {
            return Ok(None);
        }
        let mut providers: Vec<PathBuf> = std::fs::read_dir(&folder)
            .map_err(|e| err(&folder, format!("cannot read: {e}")))?
            .flatten()
            .map(|entry| entry.path())
            .filter(|p| {
                p.extension().is_some_and(|e| e == "gtpack") || p.join("pack.yaml").is_file()
            })
            .collect();
        providers.sort();
        let packs = dir.join("packs");
        let mut tenant_apps = Vec::new();
        for (tenant, tenant_dir) in subdirs(&packs) {
            if let Some(pack) = default_pack(&tenant_dir) {
                tenant_apps.push(TenantApp {
                    tenant: tenant.clone(),
                    team: None,
                    pack,
                });
            }
            for (team, team_dir) in subdirs(&tenant_dir) {
                if let Some(pack) = default_pack(&team_dir) {
                    tenant_apps.push(TenantApp {
                        tenant: tenant.clone(),
                        team: Some(team),
                        pack,
                    });
                }
            }
        }
        let app = default_pack(&packs)
            .ok_or_else(|| {
                err(
                    dir,
                    "a bundle with providers needs its default app pack at `packs/default.gtpack` (or a `packs/default/` pack directory)",
                )
            })?;
        Ok(Some(Bundle {
            app,
            providers,
            tenant_apps,
        }))
    }
}
