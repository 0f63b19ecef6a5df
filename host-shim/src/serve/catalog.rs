//! The flows a server serves, by id: scanned at start, rescanned (debounced)
//! when a request names an id it does not know.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use compose::pack::{flow_id_of, flow_type_of};
use prometheus_client::metrics::counter::Counter;

/// The flows served, by id.
pub(super) struct Catalog {
    target: PathBuf,
    /// Flow id -> file, rebuilt by a rescan.
    known: Mutex<HashMap<String, PathBuf>>,
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
            target: target.to_path_buf(),
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
    pub(super) fn root(&self) -> &Path {
        if self.target.is_file() {
            self.target.parent().unwrap_or(Path::new(""))
        } else {
            &self.target
        }
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
            self.target.display()
        )
    }

    /// The file of flow `id`: from the index (checked against the file, which
    /// may have been edited), else after a rescan on the blocking pool if the
    /// last one is older than `rescan_every`.
    pub(super) async fn find(&self, id: &str) -> Option<PathBuf> {
        let hit = self.known.lock().expect("catalog").get(id).cloned();
        if let Some(file) = hit
            && flow_id_of(&file).as_deref() == Some(id)
        {
            return Some(file);
        }
        let mut last = self.last_scan.lock().await;
        if last.elapsed() >= self.rescan_every {
            let target = self.target.clone();
            if let Ok(found) = tokio::task::spawn_blocking(move || scan(&target)).await {
                *self.known.lock().expect("catalog") = found;
                self.scans.inc();
            }
            *last = Instant::now();
        }
        drop(last);
        let hit = self.known.lock().expect("catalog").get(id).cloned();
        hit.filter(|file| flow_id_of(file).as_deref() == Some(id))
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
            .cloned()
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
fn scan(target: &Path) -> HashMap<String, PathBuf> {
    use compose::pack::{Pack, Target};
    let target = match Pack::open_dir(target) {
        Ok(pack) => Target::Pack(pack, None),
        Err(_) => Target::Flow(target.to_path_buf()),
    };
    let files = target.flow_files().unwrap_or_default();
    let mut found = HashMap::new();
    for file in files {
        if let Some(id) = flow_id_of(&file) {
            found.entry(id).or_insert(file);
        }
    }
    found
}
