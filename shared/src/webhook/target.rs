//! Where a webhook may be sent: `https`, to a public address, unless the allow-list
//! (`WEBHOOK_ALLOWED_HOSTS`: host names or CIDR ranges, comma-separated) lets a host be plain
//! `http`, private, loopback or link-local. Checked on the addresses the name resolves to, so
//! a public-looking name that resolves to `10.0.0.1` or to the metadata service is refused.

use http::Uri;
use hyper_util::client::legacy::connect::dns::Name;
use ipnet::IpNet;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// Hosts and ranges exempt from the rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    hosts: Vec<String>,
    ranges: Vec<IpNet>,
}

/// Why a URL is refused; the text is for the caller (it names their own URL's parts only).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("callbackUrl is not an absolute http(s) URL")]
    Malformed,
    #[error("callbackUrl must use https")]
    NotHttps,
    #[error("callbackUrl's host does not resolve")]
    Unresolvable,
    #[error("callbackUrl's host resolves to a private, loopback or link-local address")]
    PrivateAddress,
}

impl AllowList {
    /// `WEBHOOK_ALLOWED_HOSTS`; `Err` names the entry that is neither a host nor a range.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut list = AllowList::default();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if let Ok(net) = entry.parse::<IpNet>() {
                list.ranges.push(net);
            } else if let Ok(ip) = entry.parse::<IpAddr>() {
                list.ranges.push(IpNet::from(ip));
            } else if entry
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            {
                list.hosts.push(entry.to_ascii_lowercase());
            } else {
                return Err(entry.to_owned());
            }
        }
        Ok(list)
    }

    fn allows_host(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
            || host
                .trim_matches(['[', ']'])
                .parse::<IpAddr>()
                .is_ok_and(|ip| self.allows_ip(ip))
    }

    fn allows_ip(&self, ip: IpAddr) -> bool {
        self.ranges.iter().any(|net| net.contains(&ip))
    }
}

/// `url` if a webhook may be sent there now (resolving its host).
pub async fn check_url(url: &str, allow: &AllowList) -> Result<Uri, TargetError> {
    let uri: Uri = url.parse().map_err(|_| TargetError::Malformed)?;
    let host = uri.host().ok_or(TargetError::Malformed)?.to_owned();
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(TargetError::Malformed),
    };
    let allowed_host = allow.allows_host(&host);
    if !https && !allowed_host {
        return Err(TargetError::NotHttps);
    }
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let addresses: Vec<IpAddr> = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|_| TargetError::Unresolvable)?
        .map(|a| a.ip())
        .collect();
    if addresses.is_empty() {
        return Err(TargetError::Unresolvable);
    }
    if !allowed_host
        && addresses
            .iter()
            .any(|&ip| !is_public(ip) && !allow.allows_ip(ip))
    {
        return Err(TargetError::PrivateAddress);
    }
    Ok(uri)
}

/// The name resolver of the notifications' HTTP client: it resolves as [`check_url`] does and
/// hands the connection only addresses the rules allow, so a name cannot resolve to a public
/// address for the check and to a private one for the connection (DNS rebinding). Addresses
/// written in the URL are not resolved: [`check_url`] judged them.
#[derive(Clone)]
pub struct CheckedResolver {
    allow: Arc<AllowList>,
}

impl CheckedResolver {
    pub fn new(allow: AllowList) -> Self {
        CheckedResolver {
            allow: Arc::new(allow),
        }
    }
}

impl tower_service::Service<Name> for CheckedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let allow = self.allow.clone();
        Box::pin(async move {
            let host = name.as_str();
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, 0)).await?.collect();
            let refused = !allow.allows_host(host)
                && addresses
                    .iter()
                    .any(|a| !is_public(a.ip()) && !allow.allows_ip(a.ip()));
            if refused {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    TargetError::PrivateAddress.to_string(),
                ));
            }
            Ok(addresses.into_iter())
        })
    }
}

/// Not loopback, private, link-local, shared (CGNAT), unspecified, broadcast or multicast.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let shared = v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64;
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || shared
                || v4.octets()[0] == 0)
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || (first & 0xfe00) == 0xfc00 // unique local
                    || (first & 0xffc0) == 0xfe80) // link-local
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn private_and_plain_targets_are_refused_unless_allowed() {
        let none = AllowList::default();
        for (url, refused) in [
            (
                "http://169.254.169.254/latest/meta-data/",
                TargetError::NotHttps,
            ),
            (
                "https://169.254.169.254/latest/meta-data/",
                TargetError::PrivateAddress,
            ),
            ("https://localhost/hook", TargetError::PrivateAddress),
            ("https://10.0.0.1/hook", TargetError::PrivateAddress),
            ("https://[::1]/hook", TargetError::PrivateAddress),
            (
                "https://[::ffff:127.0.0.1]/hook",
                TargetError::PrivateAddress,
            ),
            ("https://100.64.0.1/hook", TargetError::PrivateAddress),
            ("ftp://example.com/x", TargetError::Malformed),
            ("/relative", TargetError::Malformed),
        ] {
            assert_eq!(check_url(url, &none).await.unwrap_err(), refused, "{url}");
        }
        assert!(check_url("https://93.184.215.14/hook", &none).await.is_ok());
        let allowed = AllowList::parse("127.0.0.1, 10.0.0.0/8,receiver.internal").unwrap();
        assert!(
            check_url("http://127.0.0.1:8080/hook", &allowed)
                .await
                .is_ok()
        );
        assert!(check_url("https://10.1.2.3/hook", &allowed).await.is_ok());
        assert_eq!(
            check_url("http://localhost/hook", &allowed)
                .await
                .unwrap_err(),
            TargetError::NotHttps,
            "localhost is not on the list"
        );
        assert_eq!(AllowList::parse("a b"), Err("a b".to_owned()));
    }

    #[tokio::test]
    async fn the_connections_resolver_hands_out_only_allowed_addresses() {
        use tower_service::Service;
        let name = |host: &str| host.parse::<Name>().unwrap();
        let mut strict = CheckedResolver::new(AllowList::default());
        let refused = strict.call(name("localhost")).await.unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::PermissionDenied);
        let mut allowed = CheckedResolver::new(AllowList::parse("127.0.0.0/8, ::1").unwrap());
        let addresses: Vec<SocketAddr> = allowed.call(name("localhost")).await.unwrap().collect();
        assert!(!addresses.is_empty() && addresses.iter().all(|a| a.ip().is_loopback()));
    }
}
