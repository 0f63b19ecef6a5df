//! A greentic bundle directory, as greentic-start lays it out: provider packs
//! under `providers/<domain>/`, the app pack at `packs/default.gtpack` (or
//! a `packs/default/` directory), and per-tenant app packs at
//! `packs/{tenant}/default.gtpack` and `packs/{tenant}/{team}/default.gtpack`
//! (greentic-start's lookup order: team, tenant, default). As in
//! greentic-start (`messaging_app.rs`), an app pack `bundle.yaml` names in
//! `app_packs` comes first and serves every tenant; without one and without
//! a default pack, the one other `packs/*.gtpack` is the app.

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
        let app = match named_app_pack(dir, &packs)? {
            Some(named) => {
                // greentic-start's order: the named pack before any tenant's.
                tenant_apps.clear();
                named
            }
            None => match default_pack(&packs) {
                Some(default) => default,
                None => only_other_pack(dir, &packs)?,
            },
        };
        Ok(Some(Bundle {
            app,
            providers,
            tenant_apps,
        }))
    }
}

/// The first app pack `dir/bundle.yaml`'s `app_packs` names that is in
/// `packs` (greentic-start's rule: the name is the reference's last segment
/// without `.gtpack` / `.pack`, found as `packs/<name>.gtpack`, then
/// `packs/<name>.pack/dist/*.gtpack`, then as the reference itself under
/// `packs/`); `None` without a `bundle.yaml` or `app_packs`.
fn named_app_pack(dir: &Path, packs: &Path) -> Result<Option<PathBuf>, PackError> {
    let file = dir.join("bundle.yaml");
    let Ok(text) = std::fs::read_to_string(&file) else {
        return Ok(None);
    };
    let doc: serde_yaml::Value =
        serde_yaml::from_str(&text).map_err(|e| err(&file, format!("not YAML: {e}")))?;
    let references: Vec<&str> = match doc.get("app_packs") {
        None | Some(serde_yaml::Value::Null) => return Ok(None),
        Some(serde_yaml::Value::Sequence(items)) => {
            items.iter().filter_map(|i| i.as_str()).collect()
        }
        Some(_) => return Err(err(&file, "`app_packs` is not a list of pack references")),
    };
    if references.is_empty() {
        return Ok(None);
    }
    for reference in &references {
        let last = reference.rsplit('/').next().unwrap_or(reference);
        let name = last.trim_end_matches(".gtpack").trim_end_matches(".pack");
        let direct = packs.join(format!("{name}.gtpack"));
        if direct.is_file() {
            return Ok(Some(direct));
        }
        let dist = packs.join(format!("{name}.pack")).join("dist");
        let mut built: Vec<PathBuf> = std::fs::read_dir(&dist)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "gtpack"))
            .collect();
        built.sort();
        if let Some(first) = built.into_iter().next() {
            return Ok(Some(first));
        }
        let as_path = packs.join(reference);
        if !reference.contains("://") && as_path.is_file() {
            return Ok(Some(as_path));
        }
    }
    Err(err(
        &file,
        format!(
            "none of its app_packs ({}) is under `{}`",
            references.join(", "),
            packs.display()
        ),
    ))
}

/// Without a default app pack: the one `packs/*.gtpack` there is.
fn only_other_pack(dir: &Path, packs: &Path) -> Result<PathBuf, PackError> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(packs)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "gtpack"))
        .collect();
    found.sort();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(err(
            dir,
            "a bundle with providers needs its app pack: `bundle.yaml` `app_packs`, `packs/default.gtpack` (or a `packs/default/` pack directory)",
        )),
        _ => Err(err(
            dir,
            format!(
                "which app pack? `packs/` holds {} and no default.gtpack; name one in `bundle.yaml` `app_packs`",
                found
                    .iter()
                    .filter_map(|p| p.file_name()?.to_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("greentic-bundle-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("providers/messaging")).unwrap();
        std::fs::create_dir_all(dir.join("packs/acme")).unwrap();
        std::fs::write(dir.join("providers/messaging/telegram.gtpack"), b"p").unwrap();
        std::fs::write(dir.join("packs/acme/default.gtpack"), b"t").unwrap();
        dir
    }

    #[test]
    fn bundle_yaml_names_the_app_pack_before_defaults_and_tenants() {
        let dir = bundle_dir("named");
        std::fs::write(dir.join("packs/default.gtpack"), b"d").unwrap();
        std::fs::write(dir.join("packs/sales.gtpack"), b"s").unwrap();
        std::fs::create_dir_all(dir.join("packs/hr.pack/dist")).unwrap();
        std::fs::write(dir.join("packs/hr.pack/dist/hr.pack.gtpack"), b"h").unwrap();

        let open = |yaml: &str| {
            std::fs::write(dir.join("bundle.yaml"), yaml).unwrap();
            Bundle::open(&dir, "messaging")
        };
        let bundle =
            open("name: demo\napp_packs:\n  - https://cdn.example.com/packs/sales.gtpack\n")
                .unwrap()
                .unwrap();
        assert_eq!(bundle.app, dir.join("packs/sales.gtpack"));
        assert!(bundle.tenant_apps.is_empty(), "{:?}", bundle.tenant_apps);
        let bundle = open("app_packs: [missing.gtpack, packs/hr.pack]\n")
            .unwrap()
            .unwrap();
        assert_eq!(bundle.app, dir.join("packs/hr.pack/dist/hr.pack.gtpack"));
        let error = open("app_packs: [missing.gtpack]\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("missing.gtpack"), "{error}");
        // No app_packs: the default pack, and the tenants' own.
        let bundle = open("name: demo\n").unwrap().unwrap();
        assert_eq!(bundle.app, dir.join("packs/default.gtpack"));
        assert_eq!(bundle.tenant_apps.len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn without_a_default_the_one_other_pack_is_the_app() {
        let dir = bundle_dir("other");
        std::fs::write(dir.join("packs/sales.gtpack"), b"s").unwrap();
        let bundle = Bundle::open(&dir, "messaging").unwrap().unwrap();
        assert_eq!(bundle.app, dir.join("packs/sales.gtpack"));
        std::fs::write(dir.join("packs/hr.gtpack"), b"h").unwrap();
        let error = Bundle::open(&dir, "messaging").unwrap_err().to_string();
        assert!(error.contains("hr.gtpack, sales.gtpack"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
