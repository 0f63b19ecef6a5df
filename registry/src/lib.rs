//! Components and packs from OCI registries.
//!
//! greentic publishes components and packs as OCI artifacts (one layer of a
//! known media type, see [`Kind`]) and names them in flows as
//! `oci://REGISTRY/REPOSITORY:TAG` or `…@sha256:<digest>`. [`Registry`]
//! fetches such a reference into a digest-keyed cache ([`store`]) and gives
//! back the local file:
//!
//! - a digest in the reference, or a [`Lock`] entry for it, pins the
//!   manifest: the cache answers without the network, and what the registry
//!   sends must have that digest;
//! - a tag is asked of the registry each time (tags move); its bytes are
//!   fetched only when that digest is not cached;
//! - offline, only pinned and cached artifacts are found;
//! - every layer is checked against its digest (by the client as it
//!   arrives, and again on each read from the cache), its size against a
//!   limit, and its bytes against what its kind must be.
//!
//! The client is `oci-client` (the `oci-distribution` crate's successor);
//! registries on loopback are reached over plain HTTP, as Docker does.

mod credentials;
mod error;
mod lock;
mod pull;
mod reference;
mod store;

use std::path::PathBuf;
use std::time::Duration;

pub use credentials::Credentials;
pub use error::RegistryError;
pub use lock::Lock;
pub use reference::{OciRef, SCHEME};

/// What an artifact is, which decides the layer media types accepted and
/// what its bytes must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A WebAssembly component (`.wasm`).
    Component,
    /// A greentic pack (`.gtpack`, a zip archive).
    Pack,
}

impl Kind {
    /// Layer media types taken, most preferred first: what greentic's
    /// publishing (oras, greentic-distributor-client) and wasm-pkg tools
    /// write.
    pub fn media_types(self) -> &'static [&'static str] {
        match self {
            Kind::Component => &[
                "application/vnd.wasm.component.v1+wasm",
                "application/vnd.module.wasm.content.layer.v1+wasm",
                "application/vnd.greentic.wasm.component",
                "application/wasm",
                "application/octet-stream",
            ],
            // greentic pushes the `.gtpack` file itself as the layer, whatever
            // the media type says (`…layer.v1+tar` included).
            Kind::Pack => &[
                "application/vnd.greentic.gtpack.v1+zip",
                "application/vnd.greentic.gtpack+zip",
                "application/vnd.greentic.pack+zip",
                "application/vnd.greentic.gtpack.layer.v1+tar",
                "application/octet-stream",
            ],
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Kind::Component => "component",
            Kind::Pack => "pack",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Kind::Component => "wasm",
            Kind::Pack => "gtpack",
        }
    }

    /// Whether `bytes` start as this kind's files do.
    fn looks_right(self, bytes: &[u8]) -> bool {
        match self {
            Kind::Component => bytes.starts_with(b"\0asm"),
            Kind::Pack => bytes.starts_with(b"PK\x03\x04"),
        }
    }
}

/// How the registry is used.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// The cache's directory.
    pub cache_dir: PathBuf,
    /// Refuse every network access.
    pub offline: bool,
    /// Pins from a lock file.
    pub lock: Lock,
    /// Credentials per registry.
    pub credentials: Credentials,
    /// Largest layer taken.
    pub max_layer_bytes: u64,
    /// Deadline for one fetch, start to end.
    pub timeout: Duration,
}

impl RegistryOptions {
    /// Defaults for `cache_dir`: online, no pins, credentials from the
    /// environment, layers up to 256 MiB, 5 minutes a fetch.
    pub fn new(cache_dir: PathBuf) -> RegistryOptions {
        RegistryOptions {
            cache_dir,
            offline: false,
            lock: Lock::default(),
            credentials: Credentials::from_env(),
            max_layer_bytes: 256 << 20,
            timeout: Duration::from_secs(300),
        }
    }
}

/// An artifact on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The file (in the cache).
    pub path: PathBuf,
    /// The manifest digest it was fetched by (what a lock pins).
    pub digest: String,
    /// Whether the registry was asked.
    pub from_network: bool,
}

/// Fetches registry references into the cache.
#[derive(Debug)]
pub struct Registry {
    options: RegistryOptions,
    store: store::Store,
}

impl Registry {
    /// A registry client with `options`.
    pub fn new(options: RegistryOptions) -> Registry {
        Registry {
            store: store::Store::new(options.cache_dir.clone()),
            options,
        }
    }

    /// Whether a lock file pins `reference` (it then wins over a local file
    /// of the same name).
    pub fn pinned(&self, reference: &str) -> bool {
        self.options.lock.digest(reference).is_some()
    }

    /// Whether fetching is refused.
    pub fn offline(&self) -> bool {
        self.options.offline
    }

    /// The file of the `kind` artifact `reference` names, from the cache
    /// when it is pinned there, else from its registry.
    pub fn fetch(&self, reference: &OciRef, kind: Kind) -> Result<Fetched, RegistryError> {
        let pin = reference
            .digest()
            .or_else(|| self.options.lock.digest(reference.as_str()))
            .map(str::to_string);
        if let Some(digest) = &pin
            && let Some(path) = self.store.get(digest, kind, reference.as_str())?
        {
            return Ok(Fetched {
                path,
                digest: digest.clone(),
                from_network: false,
            });
        }
        if self.options.offline {
            return Err(RegistryError::Offline {
                reference: reference.to_string(),
                tagged: pin.is_none(),
            });
        }
        let target = match &pin {
            Some(digest) => reference.at(digest),
            None => reference.oci().clone(),
        };
        self.block_on(reference, async {
            pull::fetch(
                &self.client(reference),
                &self.auth(reference),
                &target,
                reference,
                kind,
                &self.store,
                self.options.max_layer_bytes,
            )
            .await
        })
    }

    /// The manifest digest `reference` has in its registry now (one request;
    /// how a served tag is watched).
    pub fn current_digest(&self, reference: &OciRef) -> Result<String, RegistryError> {
        if self.options.offline {
            return Err(RegistryError::Offline {
                reference: reference.to_string(),
                tagged: reference.digest().is_none(),
            });
        }
        self.block_on(reference, async {
            pull::digest(&self.client(reference), &self.auth(reference), reference).await
        })
    }

    fn auth(&self, reference: &OciRef) -> oci_client::secrets::RegistryAuth {
        self.options.credentials.for_host(reference.registry())
    }

    fn client(&self, reference: &OciRef) -> oci_client::Client {
        // rustls needs its crypto chosen once per process; ring, as elsewhere.
        let _ = rustls::crypto::ring::default_provider().install_default();
        oci_client::Client::new(oci_client::client::ClientConfig {
            protocol: if reference.is_loopback() {
                oci_client::client::ClientProtocol::Http
            } else {
                oci_client::client::ClientProtocol::Https
            },
            connect_timeout: Some(Duration::from_secs(10)),
            read_timeout: Some(Duration::from_secs(60)),
            ..Default::default()
        })
    }

    /// Runs a fetch to its end or its deadline, on a thread of its own: the
    /// callers are synchronous and may be inside another async runtime.
    fn block_on<T: Send>(
        &self,
        reference: &OciRef,
        work: impl std::future::Future<Output = Result<T, RegistryError>> + Send,
    ) -> Result<T, RegistryError> {
        let transport = |detail: String| RegistryError::Transport {
            reference: reference.to_string(),
            detail,
        };
        let timeout = self.options.timeout;
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| transport(format!("cannot start a runtime: {e}")))?;
                    runtime.block_on(async {
                        tokio::time::timeout(timeout, work)
                            .await
                            .unwrap_or_else(|_| {
                                Err(transport(format!(
                                    "no answer within {} s",
                                    timeout.as_secs()
                                )))
                            })
                    })
                })
                .join()
                .unwrap_or_else(|_| Err(transport("the fetch panicked".into())))
        })
    }
}
