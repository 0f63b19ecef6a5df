//! `oci://REGISTRY/REPOSITORY[:TAG][@sha256:<hex>]`, as greentic flows and
//! packs write component and pack references.

use std::fmt;

use oci_client::Reference;

use crate::RegistryError;

/// The scheme of registry references.
pub const SCHEME: &str = "oci://";

/// A parsed `oci://` reference, remembering how it was written (lock files
/// and messages key on that text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciRef {
    written: String,
    parsed: Reference,
}

impl OciRef {
    /// Parses `text`, which must start with `oci://` and name a registry host
    /// (`ghcr.io/…`, `127.0.0.1:5000/…`): a bare `repo:tag` would silently
    /// mean Docker Hub.
    pub fn parse(text: &str) -> Result<OciRef, RegistryError> {
        let invalid = |reason: &str| RegistryError::InvalidReference {
            reference: text.to_string(),
            reason: reason.to_string(),
        };
        let rest = text
            .strip_prefix(SCHEME)
            .ok_or_else(|| invalid("it does not start with oci://"))?;
        let host = rest.split('/').next().unwrap_or("");
        if !rest.contains('/') || !(host.contains('.') || host.contains(':') || host == "localhost")
        {
            return Err(invalid(
                "name the registry host first (oci://ghcr.io/org/name:tag)",
            ));
        }
        let parsed = Reference::try_from(rest).map_err(|e| invalid(&e.to_string()))?;
        if let Some(digest) = parsed.digest()
            && !is_sha256(digest)
        {
            return Err(invalid("a digest is sha256:<64 hex digits>"));
        }
        Ok(OciRef {
            written: text.to_string(),
            parsed,
        })
    }

    /// Whether `text` is meant as a registry reference.
    pub fn is_oci(text: &str) -> bool {
        text.starts_with(SCHEME)
    }

    /// As written.
    pub fn as_str(&self) -> &str {
        &self.written
    }

    /// The registry host (with port).
    pub fn registry(&self) -> &str {
        self.parsed.resolve_registry()
    }

    /// The digest it pins, if any.
    pub fn digest(&self) -> Option<&str> {
        self.parsed.digest()
    }

    /// The last path segment of the repository: the artifact's short name.
    pub fn name(&self) -> &str {
        self.parsed
            .repository()
            .rsplit('/')
            .next()
            .unwrap_or_default()
    }

    /// The same repository pinned to `digest` (`oci://REGISTRY/REPO@digest`).
    pub fn with_digest(&self, digest: &str) -> OciRef {
        let parsed = self.at(digest);
        OciRef {
            written: format!(
                "{SCHEME}{}/{}@{digest}",
                self.parsed.registry(),
                self.parsed.repository()
            ),
            parsed,
        }
    }

    /// The same repository at `digest`.
    pub(crate) fn at(&self, digest: &str) -> Reference {
        Reference::with_digest(
            self.parsed.registry().to_string(),
            self.parsed.repository().to_string(),
            digest.to_string(),
        )
    }

    /// For the client: the tag, or the digest when one is written.
    pub(crate) fn oci(&self) -> &Reference {
        &self.parsed
    }

    /// Whether the registry is on this machine (reached over plain HTTP, as
    /// Docker does for `localhost`).
    pub fn is_loopback(&self) -> bool {
        // (The reference grammar has no IPv6 literals.)
        let host = self.registry();
        let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Display for OciRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written)
    }
}

/// `sha256:` and 64 lowercase hex digits.
pub(crate) fn is_sha256(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// `sha256:<hex>` of `bytes`.
pub(crate) fn sha256(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("sha256:{:x}", Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tags_digests_and_hosts() {
        let r = OciRef::parse("oci://ghcr.io/greenticai/components/templates:stable").unwrap();
        assert_eq!(r.registry(), "ghcr.io");
        assert_eq!(r.name(), "templates");
        assert_eq!(r.digest(), None);
        assert!(!r.is_loopback());
        let d = format!("sha256:{}", "a".repeat(64));
        let r = OciRef::parse(&format!("oci://127.0.0.1:5000/c/echo@{d}")).unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.digest(), Some(d.as_str()));
        assert!(r.is_loopback());
        let tagged = OciRef::parse("oci://127.0.0.1:5000/c/echo:1.0").unwrap();
        assert_eq!(tagged.with_digest(&d), r);
        assert!(
            OciRef::parse("oci://localhost:5000/x:1")
                .unwrap()
                .is_loopback()
        );
        for bad in [
            "ghcr.io/x:1",
            "oci://templates:stable",
            "oci://ghcr.io",
            "oci://ghcr.io/x@sha256:abc",
            "oci://ghcr.io/UPPER:1",
        ] {
            assert!(
                matches!(
                    OciRef::parse(bad),
                    Err(RegistryError::InvalidReference { .. })
                ),
                "{bad}"
            );
        }
    }
}
