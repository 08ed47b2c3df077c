//! The SSRF guard for flow HTTP calls.
//!
//! A flow's `http` node is written by a business user, and its URL may carry customer input,
//! so a call could otherwise reach the server's own admin endpoints, a cloud metadata
//! service (169.254.169.254) or anything on the private network. Every request is checked
//! after DNS resolution: a host whose addresses include a loopback, private, link-local,
//! unique-local, multicast or otherwise non-public address is refused, and the request
//! then connects to exactly the addresses that were checked (no second lookup for a
//! rebinding DNS server to answer differently). Redirects are not followed.
//!
//! The operator can allow hosts explicitly (`flows.allow_hosts`: `host` or `host:port`, or
//! `self` for this server's own listen address, which the demo uses for its account
//! endpoint); allowed hosts skip the address check.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Not an http(s) URL, or no host.
    #[error("only http and https URLs with a host can be called: {0}")]
    BadUrl(String),
    /// The host resolves to an address we never call.
    #[error("{host} resolves to {addr}, a non-public address (allow it with flows.allow_hosts)")]
    Private {
        /// The host.
        host: String,
        /// The offending address.
        addr: IpAddr,
    },
    /// DNS failed.
    #[error("cannot resolve {0}")]
    Unresolvable(String),
}

/// Whether an address is one a flow may never call unless the operator allows its host.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            let s = v6.segments();
            // NAT64 (64:ff9b::/96) embeds an IPv4 address in the last 32 bits.
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                let o = v6.octets();
                return forbidden_v4(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                // IPv4-compatible ::a.b.c.d (deprecated) also embeds IPv4.
                || (s[0..6] == [0, 0, 0, 0, 0, 0])
        }
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || o[0] == 0 // "this network"
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // carrier-grade NAT 100.64/10
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking 198.18/15
        || o[0] >= 240 // reserved
}

/// The operator's exceptions.
#[derive(Debug, Clone, Default)]
pub struct Allowed {
    /// Lower-case `host` or `host:port` entries.
    pub hosts: Vec<String>,
    /// This server's own address (`host:port`), when `self` is allowed.
    pub own: Option<String>,
}

impl Allowed {
    /// Whether `host` (and `port`) is explicitly allowed.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let with_port = format!("{host}:{port}");
        let bracketed = format!("[{host}]:{port}");
        self.hosts
            .iter()
            .chain(self.own.iter())
            .any(|a| *a == host || *a == with_port || *a == bracketed)
    }
}

/// What the guard decided for a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Explicitly allowed: connect normally.
    Allowed,
    /// Public: connect only to these checked addresses.
    Pinned {
        /// The host name to pin.
        host: String,
        /// The checked addresses.
        addrs: Vec<SocketAddr>,
    },
}

/// Checks a URL, resolving its host.
pub async fn check(url: &reqwest::Url, allowed: &Allowed) -> Result<Verdict, Refused> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Refused::BadUrl(url.scheme().to_string()));
    }
    let host = url
        .host_str()
        .ok_or_else(|| Refused::BadUrl(url.to_string()))?
        .to_string();
    let port = url
        .port_or_known_default()
        .ok_or_else(|| Refused::BadUrl(url.to_string()))?;
    if allowed.allows(&host, port) {
        return Ok(Verdict::Allowed);
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((bare, port))
            .await
            .map_err(|_| Refused::Unresolvable(host.clone()))?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(Refused::Unresolvable(host));
    }
    if let Some(bad) = addrs.iter().find(|a| is_forbidden(a.ip())) {
        return Err(Refused::Private {
            host,
            addr: bad.ip(),
        });
    }
    Ok(Verdict::Pinned {
        host: bare.to_string(),
        addrs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_public_addresses_are_refused_and_public_ones_pass() {
        let cases = [
            ("127.0.0.1", true, "loopback"),
            ("127.5.6.7", true, "all of 127/8"),
            ("10.1.2.3", true, "10/8"),
            ("172.16.0.1", true, "172.16/12 start"),
            ("172.31.255.254", true, "172.16/12 end"),
            ("172.32.0.1", false, "just outside 172.16/12"),
            ("192.168.1.1", true, "192.168/16"),
            ("169.254.169.254", true, "link-local: cloud metadata"),
            ("100.64.0.1", true, "carrier-grade NAT"),
            ("0.0.0.0", true, "unspecified"),
            ("224.0.0.1", true, "multicast"),
            ("255.255.255.255", true, "broadcast"),
            ("8.8.8.8", false, "public"),
            ("93.184.216.34", false, "public"),
            ("::1", true, "IPv6 loopback"),
            ("::", true, "IPv6 unspecified"),
            ("fc00::1", true, "unique local fc00::/7"),
            ("fd12:3456::1", true, "unique local fd"),
            ("fe80::1", true, "IPv6 link-local"),
            ("ff02::1", true, "IPv6 multicast"),
            ("::ffff:127.0.0.1", true, "IPv4-mapped loopback"),
            ("::ffff:10.0.0.1", true, "IPv4-mapped private"),
            ("::ffff:8.8.8.8", false, "IPv4-mapped public"),
            ("64:ff9b::a00:1", true, "NAT64 of 10.0.0.1"),
            ("2606:4700:4700::1111", false, "public IPv6"),
        ];
        for (ip, forbidden, why) in cases {
            let ip: IpAddr = ip.parse().expect("valid test address");
            assert_eq!(is_forbidden(ip), forbidden, "{ip}: {why}");
        }
    }

    #[tokio::test]
    async fn urls_are_checked_after_resolution_unless_the_host_is_allowed() {
        let none = Allowed::default();
        for url in [
            "http://127.0.0.1:8080/api",
            "http://localhost:8080/api",
            "http://[::1]/x",
            "http://10.0.0.5/x",
            "http://169.254.169.254/latest/meta-data",
            "http://[::ffff:192.168.0.1]/x",
        ] {
            let u = reqwest::Url::parse(url).expect("valid url");
            assert!(check(&u, &none).await.is_err(), "{url} must be refused");
        }
        let u = reqwest::Url::parse("file:///etc/passwd").expect("valid url");
        assert!(matches!(check(&u, &none).await, Err(Refused::BadUrl(_))));
        let public = reqwest::Url::parse("http://8.8.8.8/x").expect("valid url");
        assert!(matches!(
            check(&public, &none).await,
            Ok(Verdict::Pinned { .. })
        ));

        let allowed = Allowed {
            hosts: vec!["localhost:8080".into()],
            own: Some("127.0.0.1:39999".into()),
        };
        for (url, ok) in [
            ("http://localhost:8080/api", true),
            ("http://localhost:8081/api", false),
            ("http://127.0.0.1:39999/api/v1/demo/accounts/1", true),
            ("http://127.0.0.1:40000/", false),
        ] {
            let u = reqwest::Url::parse(url).expect("valid url");
            assert_eq!(
                check(&u, &allowed).await == Ok(Verdict::Allowed),
                ok,
                "{url}"
            );
        }
    }
}
