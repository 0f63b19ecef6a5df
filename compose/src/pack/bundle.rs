//! A greentic bundle directory, as greentic-start lays it out: provider packs
//! under `providers/<domain>/`, the app pack at `packs/default.gtpack` (or
//! a `packs/default/` directory). Per-tenant app packs
//! (`packs/{tenant}/{team}/default.gtpack`) and `bundle.yaml` are not read.

use std::path::{Path, PathBuf};

use super::error::{PackError, err};

/// What a bundle holds for one domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// The app pack.
    pub app: PathBuf,
    /// The domain's provider packs (`.gtpack` files and pack directories), sorted.
    pub providers: Vec<PathBuf>,
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
        let app = ["packs/default.gtpack", "packs/default"]
            .iter()
            .map(|rel| dir.join(rel))
            .find(|p| p.is_file() || p.join("pack.yaml").is_file())
            .ok_or_else(|| {
                err(
                    dir,
                    "a bundle with providers needs its app pack at `packs/default.gtpack` (per-tenant app packs are not served yet)",
                )
            })?;
        Ok(Some(Bundle { app, providers }))
    }
}
