//! `--state file:PATH`: greentic-state's `StateStore` on an embedded redb database.
//!
//! Each entry is stored under greentic-state's fully-qualified key as the JSON
//! `{"v": value, "exp": unix seconds or null}`. redb serialises write
//! transactions, which makes `set_json_if_absent` atomic.
//!
//! Many processes may use one file: the database is opened for each
//! operation and closed after it, and an operation that finds the file held
//! by another process waits for it (up to [`LOCK_WAIT`]) instead of failing.
//! Threads of one process queue on a mutex first. redb commits are
//! copy-on-write with checksums, so a process killed mid-write leaves the
//! last committed state (repaired on the next open), never a half-written one.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use greentic_state::error::{internal, invalid_input};
use greentic_state::util::{get_at_path, set_at_path};
use greentic_state::{StateKey, StatePath, StateStore, TenantCtx, fqn, fqn_prefix};
use greentic_types::GResult;
use redb::{Database, ReadableTable, TableDefinition};

use crate::faults::FileWrite;
use serde_json::{Value, json};

const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("greentic-state");

/// How long an operation waits for another process to release the file.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// A persistent state store in one file.
pub struct FileStateStore {
    path: PathBuf,
    /// One operation at a time in this process.
    turn: Mutex<()>,
}

impl FileStateStore {
    /// Opens (or creates) the database at `path`, checking it can be used.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let store = FileStateStore {
            path: path.to_path_buf(),
            turn: Mutex::new(()),
        };
        store
            .with_db(|db| {
                let tx = db.begin_write().map_err(err)?;
                tx.open_table(TABLE).map_err(err)?;
                tx.commit().map_err(err)
            })
            .map_err(|e| anyhow::anyhow!("cannot open state file `{}`: {e}", path.display()))?;
        Ok(store)
    }

    /// Runs `f` on the database, opened for it; waits while another process
    /// has the file open.
    fn with_db<R>(&self, f: impl FnOnce(&Database) -> GResult<R>) -> GResult<R> {
        let _turn = self
            .turn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let started = std::time::Instant::now();
        let mut pause = std::time::Duration::from_millis(1);
        loop {
            match Database::create(&self.path) {
                Ok(db) => return f(&db),
                Err(redb::DatabaseError::DatabaseAlreadyOpen) if started.elapsed() < LOCK_WAIT => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(std::time::Duration::from_millis(20));
                }
                Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                    return Err(err(format!(
                        "`{}` stayed in use by another process for {} s",
                        self.path.display(),
                        LOCK_WAIT.as_secs()
                    )));
                }
                Err(e) => return Err(err(e)),
            }
        }
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn err(e: impl std::fmt::Display) -> greentic_types::GreenticError {
    internal(format!("state file: {e}"))
}

/// A stored record, or `None` if absent or expired.
fn live(bytes: Option<&[u8]>) -> GResult<Option<(Value, Option<u64>)>> {
    let Some(bytes) = bytes else { return Ok(None) };
    let record: Value = serde_json::from_slice(bytes).map_err(err)?;
    let exp = record.get("exp").and_then(Value::as_u64);
    if exp.is_some_and(|t| t <= now()) {
        return Ok(None);
    }
    Ok(Some((record.get("v").cloned().unwrap_or(Value::Null), exp)))
}

/// Writes a record into the open write transaction's table; where fault
/// injection says so (debug builds, `crate::faults`), writes part of it and
/// fails, or dies before the caller commits.
fn insert(table: &mut redb::Table<&str, &[u8]>, key: &str, bytes: &[u8]) -> GResult<()> {
    match crate::faults::file_write(key) {
        FileWrite::Normal => {
            table.insert(key, bytes).map_err(err)?;
        }
        FileWrite::FailAfter(n) => {
            table
                .insert(key, &bytes[..n.min(bytes.len())])
                .map_err(err)?;
            return Err(err(format!(
                "writing `{key}` failed after {n} bytes (injected fault)"
            )));
        }
        FileWrite::Kill => {
            table.insert(key, bytes).map_err(err)?;
            crate::faults::kill_self();
        }
    }
    Ok(())
}

fn record(value: &Value, exp: Option<u64>) -> Vec<u8> {
    serde_json::to_vec(&json!({ "v": value, "exp": exp })).expect("a JSON value serialises")
}

/// `None` keeps the deadline, `Some(0)` clears it, `Some(n)` sets it n seconds ahead.
fn deadline(previous: Option<u64>, ttl_secs: Option<u32>) -> Option<u64> {
    match ttl_secs {
        None => previous,
        Some(0) => None,
        Some(n) => Some(now() + u64::from(n)),
    }
}

impl StateStore for FileStateStore {
    fn get_json(
        &self,
        tenant: &TenantCtx,
        prefix: &str,
        key: &StateKey,
        path: Option<&StatePath>,
    ) -> GResult<Option<Value>> {
        let fqn = fqn(tenant, prefix, key);
        self.with_db(|db| {
            let tx = db.begin_read().map_err(err)?;
            let table = tx.open_table(TABLE).map_err(err)?;
            let guard = table.get(fqn.as_str()).map_err(err)?;
            let Some((value, _)) = live(guard.as_ref().map(|g| g.value()))? else {
                return Ok(None);
            };
            Ok(match path {
                Some(path) => get_at_path(&value, path).cloned(),
                None => Some(value),
            })
        })
    }

    fn set_json(
        &self,
        tenant: &TenantCtx,
        prefix: &str,
        key: &StateKey,
        path: Option<&StatePath>,
        value: &Value,
        ttl_secs: Option<u32>,
    ) -> GResult<()> {
        let fqn = fqn(tenant, prefix, key);
        self.with_db(|db| {
            let tx = db.begin_write().map_err(err)?;
            {
                let mut table = tx.open_table(TABLE).map_err(err)?;
                let existing = {
                    let guard = table.get(fqn.as_str()).map_err(err)?;
                    live(guard.as_ref().map(|g| g.value()))?
                };
                let (mut stored, previous_exp) = match existing {
                    Some((v, exp)) => (v, exp),
                    None => (Value::Null, None),
                };
                match path {
                    Some(path) => set_at_path(&mut stored, path, value.clone())?,
                    None => stored = value.clone(),
                }
                let bytes = record(&stored, deadline(previous_exp, ttl_secs));
                insert(&mut table, fqn.as_str(), &bytes)?;
            }
            tx.commit().map_err(err)
        })
    }

    fn del(&self, tenant: &TenantCtx, prefix: &str, key: &StateKey) -> GResult<bool> {
        let fqn = fqn(tenant, prefix, key);
        self.with_db(|db| {
            let tx = db.begin_write().map_err(err)?;
            let existed = {
                let mut table = tx.open_table(TABLE).map_err(err)?;
                let removed = table.remove(fqn.as_str()).map_err(err)?;
                live(removed.as_ref().map(|g| g.value()))?.is_some()
            };
            tx.commit().map_err(err)?;
            Ok(existed)
        })
    }

    fn del_prefix(&self, tenant: &TenantCtx, prefix: &str) -> GResult<u64> {
        let start = fqn_prefix(tenant, prefix);
        self.with_db(|db| {
            let tx = db.begin_write().map_err(err)?;
            let removed = {
                let mut table = tx.open_table(TABLE).map_err(err)?;
                let keys: Vec<String> = table
                    .range(start.as_str()..)
                    .map_err(err)?
                    .map(|entry| entry.map(|(k, _)| k.value().to_string()))
                    .take_while(|k| k.as_ref().map(|k| k.starts_with(&start)).unwrap_or(true))
                    .collect::<Result<_, _>>()
                    .map_err(err)?;
                for k in &keys {
                    table.remove(k.as_str()).map_err(err)?;
                }
                keys.len() as u64
            };
            tx.commit().map_err(err)?;
            Ok(removed)
        })
    }

    fn set_json_if_absent(
        &self,
        tenant: &TenantCtx,
        prefix: &str,
        key: &StateKey,
        value: &Value,
        ttl_secs: Option<u32>,
    ) -> GResult<bool> {
        if value.is_null() {
            return Err(invalid_input("set_json_if_absent needs a value"));
        }
        let fqn = fqn(tenant, prefix, key);
        self.with_db(|db| {
            let tx = db.begin_write().map_err(err)?;
            let created = {
                let mut table = tx.open_table(TABLE).map_err(err)?;
                let present = {
                    let guard = table.get(fqn.as_str()).map_err(err)?;
                    live(guard.as_ref().map(|g| g.value()))?.is_some()
                };
                if !present {
                    let bytes = record(value, deadline(None, ttl_secs));
                    insert(&mut table, fqn.as_str(), &bytes)?;
                }
                !present
            };
            tx.commit().map_err(err)?;
            Ok(created)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::state::scope::RunTenant;

    #[test]
    fn persists_across_opens_and_honours_ttl_and_prefixes() {
        let dir = std::env::temp_dir().join(format!("file-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("state.redb");
        let t = RunTenant::new("dev", "acme", None, None).unwrap();
        let k = StateKey::from("k");
        {
            let store = FileStateStore::open(&path).unwrap();
            store
                .set_json(t.ctx(), "p", &k, None, &json!({"a": 1}), None)
                .unwrap();
            store
                .set_json(
                    t.ctx(),
                    "p",
                    &StateKey::from("gone"),
                    None,
                    &json!(1),
                    Some(1),
                )
                .unwrap();
            assert!(
                !store
                    .set_json_if_absent(t.ctx(), "p", &k, &json!(2), None)
                    .unwrap()
            );
            assert!(
                store
                    .set_json_if_absent(t.ctx(), "p", &StateKey::from("new"), &json!(2), None)
                    .unwrap()
            );
        }
        let store = FileStateStore::open(&path).unwrap();
        assert_eq!(
            store.get_json(t.ctx(), "p", &k, None).unwrap(),
            Some(json!({"a": 1}))
        );
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_eq!(
            store
                .get_json(t.ctx(), "p", &StateKey::from("gone"), None)
                .unwrap(),
            None
        );
        store
            .set_json(t.ctx(), "q", &k, None, &json!(3), None)
            .unwrap();
        assert_eq!(
            store.del_prefix(t.ctx(), "p").unwrap(),
            3,
            "k, new, and the expired gone"
        );
        assert_eq!(
            store.get_json(t.ctx(), "q", &k, None).unwrap(),
            Some(json!(3))
        );
        assert!(store.del(t.ctx(), "q", &k).unwrap());
        assert!(!store.del(t.ctx(), "q", &k).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
