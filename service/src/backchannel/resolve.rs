//! The delivery worker's DNS resolver: it applies the target rules to the addresses a host name
//! resolves to at connection time, so a name that pointed somewhere public at registration cannot
//! lead the worker to a private address later.

use std::net::SocketAddr;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::target::{self, AllowHosts};

/// Resolves with the system resolver and drops addresses the target rules forbid, unless the host
/// is allow-listed; fails with the [`target::Refusal`] when none remain.
pub struct GuardedResolver {
    allow: Arc<AllowHosts>,
}

/// A host name that did not resolve.
#[derive(Debug, thiserror::Error)]
#[error("resolving {host} failed")]
pub struct LookupFailed {
    pub host: String,
    pub source: std::io::Error,
}

impl GuardedResolver {
    pub fn new(allow: Arc<AllowHosts>) -> Self {
        Self { allow }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = target::lookup(&host).await.map_err(|source| LookupFailed {
                host: host.clone(),
                source,
            })?;
            let mut refusal = None;
            let mut kept = Vec::with_capacity(addrs.len());
            for addr in addrs {
                match allow.check_address(&host, addr) {
                    Ok(()) => kept.push(SocketAddr::new(addr, 0)),
                    Err(r) => refusal = refusal.or(Some(r)),
                }
            }
            match refusal {
                Some(r) if kept.is_empty() => Err(r.into()),
                _ => Ok(Box::new(kept.into_iter()) as Addrs),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backchannel::target::Refusal;

    async fn resolve(allow: &str, host: &str) -> Result<Vec<SocketAddr>, String> {
        let allow = Arc::new(AllowHosts::parse(allow).unwrap());
        let resolver = GuardedResolver::new(allow);
        match resolver.resolve(host.parse().unwrap()).await {
            Ok(addrs) => Ok(addrs.collect()),
            Err(e) => match e.downcast::<Refusal>() {
                Ok(r) => Err(format!("refused: {r}")),
                Err(e) => Err(format!("other: {e}")),
            },
        }
    }

    #[tokio::test]
    async fn a_name_resolving_only_to_forbidden_addresses_is_refused() {
        // `localhost` resolves to loopback addresses only.
        let refused = resolve("", "localhost").await.unwrap_err();
        assert!(refused.starts_with("refused:"), "{refused}");
        assert!(refused.contains("loopback"), "{refused}");
    }

    #[tokio::test]
    async fn an_allow_listed_name_keeps_its_addresses() {
        let addrs = resolve("localhost", "localhost").await.unwrap();
        assert!(addrs.iter().any(|a| a.ip().is_loopback()), "{addrs:?}");
    }
}
