//! The flows a server serves, by id: scanned at start, rescanned (debounced)
//! when a request names an id it does not know. A known file is read again
//! only when it changed (length or modification time), not per request.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use compose::pack::{flow_id_of, flow_type_of};
use prometheus_client::metrics::counter::Counter;

/// A flow file as it was when its id was read.
#[derive(Debug, Clone)]
struct Known {
    file: PathBuf,
    stamp: Option<Stamp>,
}

/// What tells a file changed without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: std::time::SystemTime,
}

impl Stamp {
    fn of(file: &Path) -> Option<Stamp> {
        let meta = std::fs::metadata(file).ok()?;
        Some(Stamp {
            len: meta.len(),
            modified: meta.modified().ok()?,
        })
    }
}

/// The flows served, by id.
pub(super) struct Catalog {
    /// What is served; replaced when a served archive is reloaded.
    target: std::sync::RwLock<PathBuf>,
    /// Flow id -> file (and the file as last read), rebuilt by a rescan.
    known: Mutex<HashMap<String, Known>>,
    /// When the last rescan ended; held while one runs, so there is one at a time.
    last_scan: tokio::sync::Mutex<Instant>,
    /// A lookup that misses rescans only if the last rescan is this old: a
    /// client asking for unknown ids cannot make the server parse every
    /// flow per request.
    rescan_every: Duration,
    /// Rescans made (a metric).
    pub(super) scans: Counter,
}

impl Catalog {
    pub(super) fn new(target: &Path, rescan_every: Duration) -> anyhow::Result<Catalog> {
        let catalog = Catalog {
            target: std::sync::RwLock::new(target.to_path_buf()),
            known: Mutex::new(scan(target)),
            last_scan: tokio::sync::Mutex::new(Instant::now()),
            rescan_every,
            scans: Counter::default(),
        };
        catalog.scans.inc();
        if catalog.known.lock().expect("catalog").is_empty() {
            anyhow::bail!("`{}` holds no flow to serve", target.display());
        }
        Ok(catalog)
    }

    /// The directory the served flows' paths are told relative to.
    pub(super) fn root(&self) -> PathBuf {
        let target = self.target();
        if target.is_file() {
            target.parent().unwrap_or(Path::new("")).to_path_buf()
        } else {
            target
        }
    }

    fn target(&self) -> PathBuf {
        self.target.read().expect("catalog target").clone()
    }

    /// Serves `target` from now on (a reloaded pack's new root): its flows
    /// are scanned first, then swapped in at once; requests that already
    /// found a flow finish on the files they found.
    pub(super) fn retarget(&self, target: PathBuf) -> anyhow::Result<()> {
        let found = scan(&target);
        if found.is_empty() {
            anyhow::bail!("`{}` holds no flow to serve", target.display());
        }
        let mut known = self.known.lock().expect("catalog");
        *self.target.write().expect("catalog target") = target;
        *known = found;
        self.scans.inc();
        Ok(())
    }

    pub(super) fn describe(&self) -> String {
        let known = self.known.lock().expect("catalog");
        let mut ids: Vec<&String> = known.keys().collect();
        ids.sort();
        format!(
            "{} flow(s) [{}] from {}",
            ids.len(),
            ids.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            self.target().display()
        )
    }

    /// The file of flow `id`: from the index (checked against the file, which
    /// may have been edited), else after a rescan on the blocking pool if the
    /// last one is older than `rescan_every`.
    pub(super) async fn find(&self, id: &str) -> Option<PathBuf> {
        if let Some(hit) = self.check(id) {
            return Some(hit);
        }
        let mut last = self.last_scan.lock().await;
        if last.elapsed() >= self.rescan_every {
            let target = self.target();
            if let Ok(found) = tokio::task::spawn_blocking(move || scan(&target)).await {
                *self.known.lock().expect("catalog") = found;
                self.scans.inc();
            }
            *last = Instant::now();
        }
        drop(last);
        self.check(id)
    }

    /// The file of known flow `id` if it still holds that flow: unchanged
    /// since read, or read again (outside the lock) and remembered.
    fn check(&self, id: &str) -> Option<PathBuf> {
        let known = self.known.lock().expect("catalog").get(id).cloned()?;
        let now = Stamp::of(&known.file);
        if now.is_some() && now == known.stamp {
            return Some(known.file);
        }
        if flow_id_of(&known.file).as_deref() != Some(id) {
            return None;
        }
        if let Some(entry) = self.known.lock().expect("catalog").get_mut(id) {
            entry.stamp = now;
        }
        Some(known.file)
    }
}

impl Catalog {
    /// The flow channel messages run: flow `id`, else — greentic-start's
    /// fallback (`messaging_app.rs` `select_app_flow`) — the one flow of
    /// `type: messaging` (none when there are several).
    pub(super) async fn find_app(&self, id: &str) -> Option<PathBuf> {
        if let Some(file) = self.find(id).await {
            return Some(file);
        }
        let files: Vec<PathBuf> = self
            .known
            .lock()
            .expect("catalog")
            .values()
            .map(|known| known.file.clone())
            .collect();
        let mut messaging = files
            .into_iter()
            .filter(|f| flow_type_of(f).as_deref() == Some("messaging"));
        match (messaging.next(), messaging.next()) {
            (Some(only), None) => Some(only),
            _ => None,
        }
    }
}

/// Flow id -> file for every flow of `target` (a pack, a directory, a file).
fn scan(target: &Path) -> HashMap<String, Known> {
    use compose::pack::{Pack, Target};
    let target = match Pack::open_dir(target) {
        Ok(pack) => Target::Pack(pack, None),
        Err(_) => Target::Flow(target.to_path_buf()),
    };
    let files = target.flow_files().unwrap_or_default();
    let mut found = HashMap::new();
    for file in files {
        // Stamped before reading: a change while reading is seen next time.
        let stamp = Stamp::of(&file);
        if let Some(id) = flow_id_of(&file) {
            found.entry(id).or_insert(Known { file, stamp });
        }
    }
    found
}
