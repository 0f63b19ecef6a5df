//! What can go wrong fetching from a registry; every error names the reference.

use std::path::PathBuf;

/// Fetching, caching or pinning an artifact failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Not an `oci://REGISTRY/REPOSITORY[:TAG][@sha256:…]` reference.
    #[error("`{reference}` is not an OCI reference: {reason}")]
    InvalidReference {
        /// As written.
        reference: String,
        /// Why it does not parse.
        reason: String,
    },
    /// `--offline`, and the artifact is neither pinned nor cached.
    #[error(
        "`{reference}`: not in the cache and --offline forbids fetching it{}",
        if *.tagged { " (a tag is resolved by the registry: pin it with `host-shim pull … --lock FILE` first)" } else { "" }
    )]
    Offline {
        /// As written.
        reference: String,
        /// It names a tag, not a digest.
        tagged: bool,
    },
    /// The registry wants credentials, or refused the ones given.
    #[error(
        "`{reference}`: the registry {registry} refused access ({detail}); give credentials with GREENTIC_REGISTRY_HOST/_USERNAME/_PASSWORD (or _TOKEN), or `docker login {registry}`"
    )]
    Unauthorized {
        /// As written.
        reference: String,
        /// The registry host.
        registry: String,
        /// What the registry said.
        detail: String,
    },
    /// The registry has no such repository, tag or digest.
    #[error("`{reference}`: not found in the registry ({detail})")]
    NotFound {
        /// As written.
        reference: String,
        /// What the registry said.
        detail: String,
    },
    /// The registry could not be reached or answered wrongly.
    #[error("`{reference}`: {detail}")]
    Transport {
        /// As written.
        reference: String,
        /// What failed.
        detail: String,
    },
    /// What arrived does not have the digest it was asked for by
    /// (reference, lock file or manifest): tampered with or corrupted.
    #[error("`{reference}`: {what} has digest {actual}, expected {expected}")]
    DigestMismatch {
        /// As written.
        reference: String,
        /// The manifest, a layer, or a cached copy.
        what: &'static str,
        /// `sha256:<hex>` asked for.
        expected: String,
        /// `sha256:<hex>` received.
        actual: String,
    },
    /// The artifact is not a component / pack: no layer of a known media
    /// type, or bytes that are not what the media type says.
    #[error("`{reference}`: not a {kind}: {detail}")]
    WrongArtifact {
        /// As written.
        reference: String,
        /// `component` or `pack`.
        kind: &'static str,
        /// What was found instead.
        detail: String,
    },
    /// A layer larger than the limit.
    #[error("`{reference}`: its layer is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// As written.
        reference: String,
        /// Declared size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The cache directory or the lock file could not be read or written.
    #[error("cannot read or write `{}`", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The lock file does not parse.
    #[error("lock file `{}`: {detail}", path.display())]
    BadLock {
        /// The lock file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

impl RegistryError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RegistryError::Io {
            path: path.into(),
            source,
        }
    }
}
