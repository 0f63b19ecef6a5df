//! Compiled artifacts on disk: atomic writes, the fill lock, the hashes that
//! name them, and the check that bytes are a component.

use sha2::{Digest, Sha256};
use std::hash::Hasher;
use std::path::{Path, PathBuf};
use wasmtime::Result;

/// `<artifact>.lock`, created exclusively; removed when dropped. A lock older
/// than [`FillLock::STALE`] is taken over (its process died).
pub(super) struct FillLock(PathBuf);

impl FillLock {
    const STALE: std::time::Duration = std::time::Duration::from_secs(600);

    pub(super) fn take(artifact: &Path) -> Result<Option<FillLock>> {
        let lock = artifact.with_extension("lock");
        if let Some(dir) = lock.parent() {
            std::fs::create_dir_all(dir)?;
        }
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&lock)
            {
                Ok(_) => return Ok(Some(FillLock(lock))),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let age = std::fs::metadata(&lock)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok());
                    if age.is_some_and(|age| age < Self::STALE) {
                        return Ok(None);
                    }
                    let _ = std::fs::remove_file(&lock);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(None)
    }
}

impl Drop for FillLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub(super) fn check_component_binary(name: &str, bytes: &[u8]) -> Result<()> {
    if !is_component_binary(bytes) {
        wasmtime::bail!(
            "`{name}` is not a WebAssembly component{}",
            if bytes.starts_with(b"\0asm") {
                " (it is a core module; node components must be components)"
            } else {
                ""
            }
        );
    }
    Ok(())
}

pub(super) fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Feeds `Hash` output into SHA-256.
pub(super) struct ShaHasher(pub(super) Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        unreachable!("only the digest is used")
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

pub(super) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        compose::private_dir::create(dir)?;
    }
    // Unique per writer: threads of one process (a server's run slots) may
    // write the same artifact at once.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
    let written = (|| {
        std::fs::write(&tmp, bytes)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        }
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    Ok(written?)
}

/// A component's preamble: magic, then version 0x0d with layer 1.
pub(super) fn is_component_binary(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[6..8] == [1, 0]
}
