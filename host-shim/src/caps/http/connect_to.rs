//! `--connect-to HOST1:PORT1:HOST2:PORT2` (curl's semantics): requests for
//! `HOST1:PORT1` connect to `HOST2:PORT2` instead, while the URL — hence the
//! profile's allow-list check, the `Host` header and the TLS server name the
//! certificate is verified for — stays `HOST1`. An empty `HOST1` or `PORT1`
//! matches any. For staging and tests (a channel API answered by a local
//! server) and for networks that reach a service through another address.

use std::net::ToSocketAddrs;
use std::sync::Arc;

use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// One `--connect-to` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRule {
    /// Host it applies to; `None`: any.
    from_host: Option<String>,
    /// Port it applies to; `None`: any.
    from_port: Option<u16>,
    /// Where to connect: `host:port`.
    to: String,
}

impl std::str::FromStr for ConnectRule {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("--connect-to `{text}`: expected HOST1:PORT1:HOST2:PORT2");
        let mut parts = text.splitn(3, ':');
        let (Some(host), Some(port), Some(to)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let Some((to_host, to_port)) = to.rsplit_once(':') else {
            return Err(bad());
        };
        let port = match port {
            "" => None,
            p => Some(p.parse::<u16>().map_err(|_| bad())?),
        };
        if to_host.is_empty() || to_port.parse::<u16>().is_err() {
            return Err(bad());
        }
        Ok(ConnectRule {
            from_host: (!host.is_empty()).then(|| host.to_ascii_lowercase()),
            from_port: port,
            to: to.to_string(),
        })
    }
}

/// The rules of a process, in the order given (the first match wins).
#[derive(Debug, Clone, Default)]
pub struct ConnectTo(Arc<Vec<ConnectRule>>);

impl ConnectTo {
    /// The rules given.
    pub fn new(rules: Vec<ConnectRule>) -> Self {
        ConnectTo(Arc::new(rules))
    }

    /// Whether there is no rule.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Where a request to `host:port` connects, if a rule says.
    fn route(&self, host: &str, port: u16) -> Option<&str> {
        self.0
            .iter()
            .find(|r| {
                r.from_host
                    .as_deref()
                    .is_none_or(|h| h.eq_ignore_ascii_case(host))
                    && r.from_port.is_none_or(|p| p == port)
            })
            .map(|r| r.to.as_str())
    }
}

/// ureq's resolver with the rules applied first.
#[derive(Debug)]
pub(super) struct RoutingResolver {
    pub(super) rules: ConnectTo,
    pub(super) fallback: DefaultResolver,
}

impl Resolver for RoutingResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let default_port = if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        };
        let target = uri.host().and_then(|host| {
            self.rules
                .route(host, uri.port_u16().unwrap_or(default_port))
        });
        let Some(target) = target else {
            return self.fallback.resolve(uri, config, timeout);
        };
        // ureq keeps at most 16 addresses.
        let mut addrs = self.empty();
        for addr in target.to_socket_addrs()?.take(16) {
            addrs.push(addr);
        }
        if addrs.is_empty() {
            return Err(ureq::Error::HostNotFound);
        }
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_as_curl_writes_them_and_the_first_match_wins() {
        let rules = ConnectTo::new(vec![
            "api.telegram.org:443:127.0.0.1:8443".parse().unwrap(),
            ":80:localhost:8080".parse().unwrap(),
            "::[::1]:9000".parse().unwrap(),
        ]);
        assert_eq!(rules.route("API.telegram.org", 443), Some("127.0.0.1:8443"));
        assert_eq!(rules.route("example.com", 80), Some("localhost:8080"));
        assert_eq!(rules.route("example.com", 443), Some("[::1]:9000"));
        for bad in ["a:b", "a:1:b", "a:x:b:1", "a:1::2", "a:1:b:port"] {
            assert!(bad.parse::<ConnectRule>().is_err(), "{bad}");
        }
    }
}
