//! The network part: a manifest, its one layer of the right kind, checked
//! and cached. oci-client does the protocol (token or basic auth, digest
//! checks as the bytes arrive); this decides what is taken.

use std::pin::Pin;
use std::task::{Context, Poll};

use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use crate::store::{Record, Store};
use crate::{Fetched, Kind, OciRef, RegistryError};

/// Fetches the artifact `target` (`reference`, at a pinned digest or its
/// tag) into `store` unless its manifest digest is there already.
pub(crate) async fn fetch(
    client: &Client,
    auth: &RegistryAuth,
    target: &Reference,
    reference: &OciRef,
    kind: Kind,
    store: &Store,
    max_layer_bytes: u64,
) -> Result<Fetched, RegistryError> {
    let (manifest, digest) = client
        .pull_image_manifest(target, auth)
        .await
        .map_err(|e| classify(reference, "the manifest", e))?;
    if let Some(path) = store.get(&digest, kind, reference.as_str())? {
        return Ok(Fetched {
            path,
            digest,
            from_network: true,
        });
    }
    let wrong = |detail: String| RegistryError::WrongArtifact {
        reference: reference.to_string(),
        kind: kind.noun(),
        detail,
    };
    let layer = choose(&manifest.layers, kind).ok_or_else(|| {
        wrong(format!(
            "its layers are [{}]; a {} layer is one of [{}]",
            manifest
                .layers
                .iter()
                .map(|l| l.media_type.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            kind.noun(),
            kind.media_types().join(", ")
        ))
    })?;
    let size = u64::try_from(layer.size).unwrap_or(u64::MAX);
    if size > max_layer_bytes {
        return Err(RegistryError::TooLarge {
            reference: reference.to_string(),
            size,
            limit: max_layer_bytes,
        });
    }
    let mut sink = Capped {
        bytes: Vec::with_capacity(size as usize),
        limit: max_layer_bytes,
        over: false,
    };
    let pulled = client.pull_blob(target, layer, &mut sink).await;
    if sink.over {
        return Err(RegistryError::TooLarge {
            reference: reference.to_string(),
            size: sink.bytes.len() as u64,
            limit: max_layer_bytes,
        });
    }
    pulled.map_err(|e| classify(reference, "its layer", e))?;
    if !kind.looks_right(&sink.bytes) {
        return Err(wrong(format!(
            "its layer ({}) does not hold a {} file",
            layer.media_type,
            kind.extension()
        )));
    }
    let record = Record {
        layer: layer.digest.clone(),
        media_type: layer.media_type.clone(),
        size: sink.bytes.len() as u64,
    };
    let path = store.put(&digest, kind, &record, &sink.bytes)?;
    Ok(Fetched {
        path,
        digest,
        from_network: true,
    })
}

/// The manifest digest the registry has for `reference` now.
pub(crate) async fn digest(
    client: &Client,
    auth: &RegistryAuth,
    reference: &OciRef,
) -> Result<String, RegistryError> {
    client
        .fetch_manifest_digest(reference.oci(), auth)
        .await
        .map_err(|e| classify(reference, "the manifest", e))
}

/// The layer of the most preferred media type for `kind`.
fn choose(layers: &[OciDescriptor], kind: Kind) -> Option<&OciDescriptor> {
    layers
        .iter()
        .filter_map(|l| {
            let rank = kind.media_types().iter().position(|m| *m == l.media_type)?;
            Some((rank, l))
        })
        .min_by_key(|(rank, _)| *rank)
        .map(|(_, l)| l)
}

/// The client's error as one of ours, by its kind (never its text).
fn classify(reference: &OciRef, what: &'static str, e: OciDistributionError) -> RegistryError {
    let (reference_s, registry) = (reference.to_string(), reference.registry().to_string());
    let unauthorized = |detail: String| RegistryError::Unauthorized {
        reference: reference_s.clone(),
        registry: registry.clone(),
        detail,
    };
    let not_found = |detail: String| RegistryError::NotFound {
        reference: reference_s.clone(),
        detail,
    };
    match e {
        OciDistributionError::UnauthorizedError { .. } => unauthorized("401 Unauthorized".into()),
        OciDistributionError::AuthenticationFailure(why) => unauthorized(why),
        OciDistributionError::RegistryError { ref envelope, .. } => {
            let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
            if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
            {
                unauthorized(envelope.to_string())
            } else if codes.iter().any(|c| {
                matches!(
                    c,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::BlobUnknown
                )
            }) {
                not_found(envelope.to_string())
            } else {
                transport(reference, what, &e)
            }
        }
        OciDistributionError::ServerError {
            code: 401 | 403,
            ref message,
            ..
        } => unauthorized(message.clone()),
        OciDistributionError::ServerError { code: 404, .. }
        | OciDistributionError::ImageManifestNotFoundError(_) => not_found(e.to_string()),
        OciDistributionError::DigestError(oci_client::errors::DigestError::VerificationError {
            expected,
            actual,
        }) => RegistryError::DigestMismatch {
            reference: reference_s,
            what,
            expected,
            actual,
        },
        e => transport(reference, what, &e),
    }
}

fn transport(reference: &OciRef, what: &str, e: &OciDistributionError) -> RegistryError {
    // reqwest's Display hides the cause (connection refused, timeout…).
    let mut detail = format!("fetching {what}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        detail.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    RegistryError::Transport {
        reference: reference.to_string(),
        detail,
    }
}

/// Collects a layer, refusing bytes past the limit (a registry may send
/// more than the manifest declares).
struct Capped {
    bytes: Vec<u8>,
    limit: u64,
    over: bool,
}

impl tokio::io::AsyncWrite for Capped {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.bytes.len() as u64 + data.len() as u64 > self.limit {
            self.over = true;
            return Poll::Ready(Err(std::io::Error::other("layer over the size limit")));
        }
        self.bytes.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
