//! A served `.gtpack` reloaded when its file changes: the new archive is
//! opened (unpacked, its signature checked as at start) off the request
//! path, then swapped in at once ([`Catalog::retarget`]). Runs that began
//! keep the files they found (an unpacked version stays on disk, keyed by
//! its digest); a waiting conversation's snapshot names its flow's hash, so
//! a turn after the swap resumes only if that flow did not change, and is
//! refused with a clear error otherwise. A new version that cannot be
//! opened or is not trusted is refused and logged; the old one keeps
//! serving until the file changes again.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::options::PackReload;
use super::server::Server;

/// What tells the archive changed without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    inode: u64,
}

fn stamp(file: &Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(file).ok()?;
    Some(FileStamp {
        len: meta.len(),
        modified: meta.modified().ok(),
        inode: meta.ino(),
    })
}

impl Server {
    /// Watches the served archive until the server stops.
    pub(super) async fn watch_pack(self: Arc<Self>, reload: PackReload) {
        let mut seen = stamp(&reload.archive);
        while !self.stopping.load(Ordering::SeqCst) {
            tokio::time::sleep(self.options.rescan_every).await;
            let now = stamp(&reload.archive);
            if now == seen || now.is_none() {
                continue;
            }
            // A file still being written changes again: settle first.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            if stamp(&reload.archive) != now {
                continue;
            }
            seen = now;
            let (open, archive) = (reload.open.clone(), reload.archive.clone());
            let opened = tokio::task::spawn_blocking(move || open(&archive))
                .await
                .map_err(anyhow::Error::from)
                .and_then(|r| r);
            let outcome = match opened.and_then(|root| {
                self.catalog.retarget(root.clone())?;
                Ok(root)
            }) {
                Ok(root) => {
                    eprintln!(
                        "host-shim: reloaded {} (now served from {})",
                        reload.archive.display(),
                        root.display()
                    );
                    "reloaded"
                }
                Err(e) => {
                    eprintln!(
                        "host-shim: the new {} is refused, the previous version keeps serving: {e:#}",
                        reload.archive.display()
                    );
                    "refused"
                }
            };
            self.metrics.reloaded(outcome);
        }
    }
}
