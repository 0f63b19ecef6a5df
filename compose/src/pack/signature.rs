//! Pack signatures as greentic's `packc sign` makes them: Ed25519 over the
//! canonical CBOR of the manifest with its signature list emptied
//! (`greentic_types::encode_pack_manifest`), the signatures then stored in
//! the manifest's `signatures` (key id, algorithm, bytes). Verified here with
//! the same published types, against public keys the user trusts.

use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::DecodePublicKey;
use ed25519_dalek::{Signature, VerifyingKey};
use greentic_types::SignatureAlgorithm;

use super::error::{PackError, err};

/// A public key trusted to sign packs.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    /// The file it was read from (named in messages).
    pub file: PathBuf,
    key: VerifyingKey,
}

impl TrustedKey {
    /// Reads an Ed25519 public key in PEM (`-----BEGIN PUBLIC KEY-----`,
    /// what `openssl pkey -pubout` writes for the key `packc sign` takes).
    pub fn load(file: &Path) -> Result<TrustedKey, PackError> {
        let pem = std::fs::read_to_string(file)
            .map_err(|e| err(file, format!("cannot read the public key: {e}")))?;
        let key = VerifyingKey::from_public_key_pem(&pem).map_err(|e| {
            err(
                file,
                format!("not an Ed25519 public key in PEM (`BEGIN PUBLIC KEY`): {e}"),
            )
        })?;
        Ok(TrustedKey {
            file: file.to_path_buf(),
            key,
        })
    }
}

/// What a pack's manifest says about who signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seal {
    /// A signature verifies with a trusted key.
    Signed {
        /// The signature's key id.
        key_id: String,
        /// The trusted key's file.
        key_file: PathBuf,
    },
    /// No signature (or a pack directory: sources, no signed manifest).
    Unsigned,
    /// Signed, but no trusted key verifies any signature: another key
    /// signed it, or the manifest was changed after signing.
    NotTrusted {
        /// The key ids of its signatures.
        key_ids: Vec<String>,
    },
}

impl Seal {
    /// A sentence for messages.
    pub fn describe(&self) -> String {
        match self {
            Seal::Signed { key_id, key_file } => format!(
                "signed (key id `{key_id}`, verified with {})",
                key_file.display()
            ),
            Seal::Unsigned => "not signed".into(),
            Seal::NotTrusted { key_ids } => format!(
                "signed (key id {}) but no trusted key verifies it: signed by another key, or the manifest was changed after signing",
                key_ids
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// The seal of the manifest `bytes` (read from `file`), checked against `keys`.
pub fn seal_of(file: &Path, bytes: &[u8], keys: &[TrustedKey]) -> Result<Seal, PackError> {
    let manifest = greentic_types::decode_pack_manifest(bytes)
        .map_err(|e| err(file, format!("cannot decode: {e}")))?;
    let signatures = manifest.signatures.signatures.clone();
    if signatures.is_empty() {
        return Ok(Seal::Unsigned);
    }
    let mut unsigned = manifest;
    unsigned.signatures.signatures.clear();
    let signed_bytes = greentic_types::encode_pack_manifest(&unsigned)
        .map_err(|e| err(file, format!("cannot encode: {e}")))?;
    for signature in &signatures {
        if signature.algorithm != SignatureAlgorithm::Ed25519 {
            continue;
        }
        let Ok(sig) = Signature::from_slice(&signature.signature) else {
            continue;
        };
        if let Some(key) = keys
            .iter()
            .find(|k| k.key.verify_strict(&signed_bytes, &sig).is_ok())
        {
            return Ok(Seal::Signed {
                key_id: signature.key_id.clone(),
                key_file: key.file.clone(),
            });
        }
    }
    Ok(Seal::NotTrusted {
        key_ids: signatures.iter().map(|s| s.key_id.clone()).collect(),
    })
}
