//! Cache directories only this user can write. What the runner reuses from
//! its cache — unpacked packs, compiled artifacts (native code Wasmtime
//! loads without checks) — is only as trustworthy as the directory: anyone
//! who can write there can inject code. So cache directories are created
//! `0700`, and an entry is reused only if it and the directories above it
//! in the cache are owned by this user and not writable by group or others.

use std::path::Path;

/// A cache path someone else could have written.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{path}` {why}: refusing to use it (remove it, or make it yours and not group/world-writable)"
)]
pub struct NotPrivate {
    /// The path.
    pub path: String,
    /// What is wrong.
    pub why: String,
}

/// Creates `dir` (and its parents) if missing; the directories created are `0700`.
pub fn create(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)
}

/// Makes everything under `dir` this user's alone: directories `0700`,
/// files `0600` (whatever the umask made them).
pub fn seal(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::symlink_metadata(dir)?;
        if meta.is_dir() {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
            for entry in std::fs::read_dir(dir)? {
                seal(&entry?.path())?;
            }
        } else if meta.is_file() {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

/// Checks `path` — and, for a directory, everything in it — is owned by
/// this user and not writable by group or others.
pub fn check(path: &Path) -> Result<(), NotPrivate> {
    check_one(path)?;
    if path.is_dir() {
        let entries = std::fs::read_dir(path).map_err(|e| NotPrivate {
            path: path.display().to_string(),
            why: format!("cannot be read ({e})"),
        })?;
        for entry in entries.flatten() {
            check(&entry.path())?;
        }
    }
    Ok(())
}

/// Checks `path` alone (not what a directory holds).
pub fn check_one(path: &Path) -> Result<(), NotPrivate> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::symlink_metadata(path).map_err(|e| NotPrivate {
            path: path.display().to_string(),
            why: format!("cannot be checked ({e})"),
        })?;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        let why = if meta.file_type().is_symlink() {
            Some("is a symbolic link".to_string())
        } else if meta.uid() != me {
            Some(format!(
                "is owned by user {}, not by this one ({me})",
                meta.uid()
            ))
        } else if meta.mode() & 0o022 != 0 {
            Some(format!(
                "is writable by group or others (mode {:o})",
                meta.mode() & 0o777
            ))
        } else {
            None
        };
        if let Some(why) = why {
            return Err(NotPrivate {
                path: path.display().to_string(),
                why,
            });
        }
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_group_writable_entry_is_refused() {
        let dir = std::env::temp_dir().join(format!("private-dir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        create(&dir.join("a")).unwrap();
        std::fs::write(dir.join("a/f"), b"x").unwrap();
        std::fs::set_permissions(dir.join("a/f"), std::fs::Permissions::from_mode(0o600)).unwrap();
        check(&dir.join("a")).unwrap();
        std::fs::set_permissions(dir.join("a/f"), std::fs::Permissions::from_mode(0o664)).unwrap();
        let refused = check(&dir.join("a")).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("writable by group or others (mode 664)"),
            "{refused}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
