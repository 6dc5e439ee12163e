//! Why a delivery attempt failed. A delivery's `last_error` keeps only the category, never the
//! raw error chain, so the listing does not tell an admin what the worker found at an address
//! (open or closed port, TLS or not, a banner); the full error goes to the log.

use std::fmt;

use super::resolve::LookupFailed;
use super::target::Refusal;

/// What a failed attempt records as its `last_error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// The POST ran past the delivery timeout.
    Timeout,
    /// Nothing listens at the address.
    ConnectionRefused,
    /// Connecting failed otherwise (unreachable, reset).
    ConnectionFailed,
    /// The host name does not resolve.
    DnsFailure,
    /// The TLS handshake failed (certificate, protocol).
    TlsError,
    /// The host is, or resolves only to, an address the target rules forbid.
    AddressNotAllowed,
    /// Plain http where neither the realm nor the allow-list allows it.
    HttpNotAllowed,
    /// The registered URI cannot be used.
    InvalidUri,
    /// The client answered with a status other than 200 or 204.
    Status(u16),
    /// The request failed after connecting (reset, malformed answer).
    RequestFailed,
    /// The client was deleted or no longer has a back-channel logout URI.
    ClientNotRegistered,
    /// The logout token could not be signed.
    SigningFailed,
    /// Reading the client's registration failed.
    StoreFailed,
    /// The Shared Signals stream was deleted or disabled.
    StreamGone,
}

impl Category {
    /// Whether retrying cannot help, so the delivery gives up at once.
    pub fn is_final(self) -> bool {
        matches!(self, Category::ClientNotRegistered | Category::StreamGone)
    }

    /// The category of a failed request, found in its chain of causes.
    pub fn of_request(e: &reqwest::Error) -> Self {
        if e.is_timeout() {
            return Category::Timeout;
        }
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(c) = cause {
            if let Some(found) = Self::of_cause(c) {
                return found;
            }
            cause = c.source();
        }
        if e.is_connect() {
            Category::ConnectionFailed
        } else {
            Category::RequestFailed
        }
    }

    /// The category one cause in an error chain settles, if any. An `io::Error` hides the error
    /// it wraps from `source()`, so that one is looked at too.
    fn of_cause(c: &(dyn std::error::Error + 'static)) -> Option<Self> {
        if let Some(r) = c.downcast_ref::<Refusal>() {
            return Some(r.into());
        }
        if c.is::<LookupFailed>() {
            return Some(Category::DnsFailure);
        }
        if c.is::<rustls::Error>() {
            return Some(Category::TlsError);
        }
        let io = c.downcast_ref::<std::io::Error>()?;
        match io.kind() {
            std::io::ErrorKind::ConnectionRefused => Some(Category::ConnectionRefused),
            std::io::ErrorKind::TimedOut => Some(Category::Timeout),
            _ => io.get_ref().and_then(|inner| Self::of_cause(inner)),
        }
    }
}

impl From<&Refusal> for Category {
    fn from(r: &Refusal) -> Self {
        match r {
            Refusal::InvalidUri(_) => Category::InvalidUri,
            Refusal::HttpNotAllowed => Category::HttpNotAllowed,
            Refusal::NameNotAllowed { .. } | Refusal::AddressNotAllowed { .. } => {
                Category::AddressNotAllowed
            }
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Category::Timeout => "timeout",
            Category::ConnectionRefused => "connection refused",
            Category::ConnectionFailed => "connection failed",
            Category::DnsFailure => "dns failure",
            Category::TlsError => "tls error",
            Category::AddressNotAllowed => "address not allowed",
            Category::HttpNotAllowed => "http not allowed",
            Category::InvalidUri => "invalid uri",
            Category::Status(status) => return write!(f, "HTTP {status}"),
            Category::RequestFailed => "request failed",
            Category::ClientNotRegistered => "client no longer registered",
            Category::SigningFailed => "signing failed",
            Category::StoreFailed => "store error",
            Category::StreamGone => "stream deleted or disabled",
        };
        f.write_str(text)
    }
}

/// A failed attempt: the category for `last_error` and the full error for the log.
#[derive(Debug)]
pub struct AttemptFailure {
    pub category: Category,
    pub detail: String,
}

impl AttemptFailure {
    pub fn new(category: Category, detail: impl Into<String>) -> Self {
        Self {
            category,
            detail: detail.into(),
        }
    }

    /// A failed request, with its whole chain of causes as the detail.
    pub fn of_request(e: &reqwest::Error) -> Self {
        let mut detail = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            detail.push_str(": ");
            detail.push_str(&s.to_string());
            source = s.source();
        }
        Self::new(Category::of_request(e), detail)
    }
}

impl From<Refusal> for AttemptFailure {
    fn from(r: Refusal) -> Self {
        Self::new((&r).into(), r.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_read_as_recorded() {
        for (category, text) in [
            (Category::Timeout, "timeout"),
            (Category::ConnectionRefused, "connection refused"),
            (Category::AddressNotAllowed, "address not allowed"),
            (Category::HttpNotAllowed, "http not allowed"),
            (Category::Status(503), "HTTP 503"),
            (Category::ClientNotRegistered, "client no longer registered"),
        ] {
            assert_eq!(category.to_string(), text);
        }
        assert!(Category::ClientNotRegistered.is_final());
        assert!(!Category::Status(503).is_final());
    }

    #[test]
    fn a_cause_wrapped_in_an_io_error_is_found() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(
            Category::of_cause(&refused),
            Some(Category::ConnectionRefused)
        );
        let tls = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::General("bad".into()),
        );
        assert_eq!(Category::of_cause(&tls), Some(Category::TlsError));
        let other = std::io::Error::other("something");
        assert_eq!(Category::of_cause(&other), None);
    }
}
