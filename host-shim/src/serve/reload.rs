//! A served pack reloaded when it changes — a `.gtpack` file (its stamp
//! changes) or an `oci://` tag (its manifest digest changes): the new
//! version is fetched, unpacked and its signature checked as at start, off
//! the request path, then swapped in at once ([`Catalog::retarget`]). Runs
//! that began keep the files they found (an unpacked version stays on disk,
//! keyed by its digest); a waiting conversation's snapshot names its flow's
//! hash, so a turn after the swap resumes only if that flow did not change,
//! and is refused with a clear error otherwise. A new version that cannot be
//! opened or is not trusted is refused and logged; the old one keeps
//! serving until the pack changes again.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::options::PackReload;
use super::server::Server;

impl Server {
    /// Watches the served archive until the server stops.
    pub(super) async fn watch_pack(self: Arc<Self>, reload: PackReload) {
        let version = |reload: &PackReload| {
            let look = reload.version.clone();
            async move {
                tokio::task::spawn_blocking(move || look())
                    .await
                    .map_err(anyhow::Error::from)
                    .and_then(|r| r)
            }
        };
        let mut seen = version(&reload).await.ok();
        let mut unreachable = false;
        while !self.stopping.load(Ordering::SeqCst) {
            tokio::time::sleep(reload.every).await;
            let now = match version(&reload).await {
                Ok(now) => {
                    unreachable = false;
                    now
                }
                Err(e) => {
                    // Said once per outage, not every look.
                    if !unreachable {
                        eprintln!(
                            "host-shim: cannot look at {} (the current version keeps serving): {e:#}",
                            reload.label
                        );
                    }
                    unreachable = true;
                    continue;
                }
            };
            if seen.as_deref() == Some(now.as_str()) {
                continue;
            }
            // A file still being written (a tag being pushed) changes again:
            // settle first.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            if version(&reload).await.ok().as_deref() != Some(now.as_str()) {
                continue;
            }
            seen = Some(now.clone());
            let open = reload.open.clone();
            let opened = tokio::task::spawn_blocking(move || open(&now))
                .await
                .map_err(anyhow::Error::from)
                .and_then(|r| r);
            let outcome = match opened.and_then(|root| {
                self.catalog.retarget(root.clone())?;
                Ok(root)
            }) {
                Ok(root) => {
                    self.count_served(&root);
                    eprintln!(
                        "host-shim: reloaded {} (now served from {})",
                        reload.label,
                        root.display()
                    );
                    "reloaded"
                }
                Err(e) => {
                    eprintln!(
                        "host-shim: the new {} is refused, the previous version keeps serving: {e:#}",
                        reload.label
                    );
                    "refused"
                }
            };
            self.metrics.reloaded(outcome);
        }
    }

    /// The metric of the pack unpacked at `root` (named by its digest).
    pub(super) fn count_served(&self, root: &std::path::Path) {
        if let Ok(pack) = compose::pack::Pack::open_dir(root) {
            let archive = root
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.split('.').next())
                .unwrap_or_default();
            self.metrics
                .serving_pack(&pack.pack_id, &format!("sha256:{archive}…"));
        }
    }
}
