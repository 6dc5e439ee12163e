//! What every request to the server passes through, whatever it reaches (JSON API, dashboard
//! pages, server functions, the live stream), in one middleware: a request id and the client's
//! address for the log and the handlers, one body limit, one time limit, security headers, and
//! a same-origin check on the dashboard's state-changing calls.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;

use crate::error::ApiError;

/// Largest request body accepted anywhere.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Time allowed for an ordinary request.
pub const REQUEST_TIME_LIMIT: Duration = Duration::from_secs(30);

/// Time allowed for a bulk removal: ending a whole realm's sessions, revoking their tokens and
/// queueing their logouts runs for minutes at a million sessions.
pub const BULK_TIME_LIMIT: Duration = Duration::from_secs(30 * 60);

/// Paths (after the realm, or the server function's name) of the calls that may end a whole
/// realm, and so get [`BULK_TIME_LIMIT`].
const BULK_PATH_ENDINGS: [&str; 6] = [
    "/sessions/end",
    "/sessions/end-all",
    "/sessions/remove",
    "/sessions/logout-all",
    "/api/end_sessions",
    "/api/end_all_sessions",
];

/// The addresses of reverse proxies whose `X-Forwarded-For` is believed.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses a comma-separated list of addresses and CIDR ranges, e.g. `10.0.0.0/8,::1`.
    pub fn parse(list: &str) -> Result<Self, String> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("'{s}' is not an IP address or CIDR range"))
            })
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address: the peer's, or, when the peer is a trusted proxy, the right-most
    /// `X-Forwarded-For` entry that is not itself a trusted proxy.
    pub fn client_address(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer?.to_canonical();
        if !self.contains(peer) {
            return Some(peer);
        }
        let forwarded: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse::<IpAddr>().ok())
            .collect();
        Some(
            forwarded
                .into_iter()
                .rev()
                .map(|ip| ip.to_canonical())
                .find(|ip| !self.contains(*ip))
                .unwrap_or(peer),
        )
    }
}

/// The hosts a request carrying the dashboard cookie may be addressed to (its `Host` header).
/// A page of another site whose name an attacker points at this server (DNS rebinding) sends
/// the attacker's name as `Host`, so it cannot use a signed-in administrator's cookie.
#[derive(Clone, Debug)]
pub struct DashboardHost {
    /// Host names (lower case; IPv6 literals in brackets) accepted.
    names: Vec<String>,
    /// Whether any IP literal is accepted too (listening on every address: no DNS name can be
    /// an IP literal, so rebinding stays out).
    any_ip: bool,
    port: u16,
    /// The port a `Host` without one means: the public URL's scheme's.
    scheme_port: u16,
    /// What the refusal names as the dashboard's address.
    public: String,
}

impl DashboardHost {
    /// The host of `public_url` (`--public-url`), or, without one, the listening address: its IP
    /// (and `localhost` for a loopback address; any IP literal and `localhost` for an
    /// unspecified one).
    pub fn new(public_url: Option<&str>, listening: SocketAddr) -> Result<Self, String> {
        let Some(public_url) = public_url.map(str::trim).filter(|u| !u.is_empty()) else {
            let ip = listening.ip();
            let mut names = vec![match ip {
                IpAddr::V4(v4) => v4.to_string(),
                IpAddr::V6(v6) => format!("[{v6}]"),
            }];
            if ip.is_loopback() || ip.is_unspecified() {
                names.push("localhost".into());
            }
            return Ok(Self {
                names,
                any_ip: ip.is_unspecified(),
                port: listening.port(),
                scheme_port: 80,
                public: format!("http://{listening}"),
            });
        };
        let url =
            url::Url::parse(public_url).map_err(|e| format!("'{public_url}' is not a URL: {e}"))?;
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            return Err(format!("'{public_url}' names no host"));
        };
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("'{public_url}' is not an http or https URL"));
        }
        Ok(Self {
            names: vec![host.to_ascii_lowercase()],
            any_ip: false,
            port,
            scheme_port: if url.scheme() == "https" { 443 } else { 80 },
            public: public_url.trim_end_matches('/').to_owned(),
        })
    }

    /// Whether a `Host` header names this server's dashboard.
    fn accepts(&self, host: &str) -> bool {
        let Ok(authority) = host.parse::<axum::http::uri::Authority>() else {
            return false;
        };
        let name = authority.host().to_ascii_lowercase();
        let port = authority.port_u16().unwrap_or(self.scheme_port);
        port == self.port
            && (self.names.contains(&name)
                || (self.any_ip && name.trim_matches(['[', ']']).parse::<IpAddr>().is_ok()))
    }
}

/// How the guard treats requests; built once from the command line.
#[derive(Clone, Debug, Default)]
pub struct GuardConfig {
    pub trusted_proxies: TrustedProxies,
    /// Where the dashboard is served; `None` checks no `Host` (tests of the API alone).
    pub dashboard_host: Option<DashboardHost>,
}

pub use service::request::{current, request_id, RequestContext};

/// Puts the whole router behind [`guard`], as its outermost layer.
pub fn protect(router: axum::Router, config: GuardConfig) -> axum::Router {
    router.layer(axum::middleware::from_fn_with_state(
        Arc::new(config),
        guard,
    ))
}

/// The middleware (see [`protect`]).
pub async fn guard(
    State(config): State<Arc<GuardConfig>>,
    mut req: Request,
    next: Next,
) -> Response {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let client = config.trusted_proxies.client_address(peer, req.headers());
    let context = RequestContext {
        id: id.clone(),
        client,
    };
    req.extensions_mut().insert(context.clone());
    // Debug level: free unless asked for; errors log the request id themselves.
    let span =
        tracing::debug_span!("request", id = %id, method = %req.method(), path = %req.uri().path());
    let response = service::request::scope(
        context,
        tracing::Instrument::instrument(checked(req, next, config), span),
    )
    .await;
    finish(response, &id)
}

/// The checks, then the handler under its time limit.
async fn checked(req: Request, next: Next, config: Arc<GuardConfig>) -> Response {
    if let Err(refused) = same_origin(&req).and_then(|()| dashboard_host(&req, &config)) {
        return refused.into_response();
    }
    let limit = time_limit(&req);
    let run = async move {
        match limit_body(req).await {
            Ok(req) => next.run(req).await,
            Err(refused) => refused.into_response(),
        }
    };
    match tokio::time::timeout(limit, run).await {
        Ok(response) => response,
        Err(_) => ApiError::timed_out(limit).into_response(),
    }
}

/// The time a request may take.
fn time_limit(req: &Request) -> Duration {
    let path = req.uri().path();
    if req.method() == Method::POST && BULK_PATH_ENDINGS.iter().any(|e| path.ends_with(e)) {
        BULK_TIME_LIMIT
    } else {
        REQUEST_TIME_LIMIT
    }
}

/// A refused body is still read and dropped up to this much (within [`DRAIN_TIME`]), so the
/// client, still sending, receives the 413 instead of a reset connection.
const DRAIN_BYTES: usize = 4 * 1024 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(2);

/// Refuses a body over [`MAX_BODY_BYTES`] with a JSON 413, whether `Content-Length` says so or a
/// chunked body runs past the limit.
async fn limit_body(req: Request) -> Result<Request, ApiError> {
    use http_body_util::BodyExt;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // A declared length within the limit is enforced by the HTTP layer itself (a body cannot
    // run past it), so only chunked bodies need counting here.
    if declared.is_some_and(|n| n <= MAX_BODY_BYTES as u64)
        || (declared.is_none() && matches!(*req.method(), Method::GET | Method::HEAD))
    {
        return Ok(req);
    }
    let (parts, mut body) = req.into_parts();
    let mut kept = Vec::new();
    let mut refused = declared.is_some_and(|n| n > MAX_BODY_BYTES as u64);
    while !refused {
        match body.frame().await {
            None => return Ok(Request::from_parts(parts, Body::from(kept))),
            Some(Err(_)) => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_body",
                    "the request body could not be read",
                ))
            }
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    kept.extend_from_slice(&data);
                    refused = kept.len() > MAX_BODY_BYTES;
                }
            }
        }
    }
    let mut drained = kept.len();
    let drain = async {
        while let Some(Ok(frame)) = body.frame().await {
            drained += frame.into_data().map_or(0, |d| d.len());
            if drained > DRAIN_BYTES {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
    Err(ApiError::body_too_large())
}

/// Cookie-authenticated reads that answer data rather than a page: the export download and the
/// live stream. Like changes, they are refused to other sites' pages.
const COOKIE_READ_PREFIXES: [&str; 2] = ["/export/", "/live/"];

/// Refuses a request carrying the dashboard cookie whose `Host` is not the dashboard's.
fn dashboard_host(req: &Request, config: &GuardConfig) -> Result<(), ApiError> {
    let Some(expected) = &config.dashboard_host else {
        return Ok(());
    };
    let has_cookie = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.split_once('='))
        .any(|(name, _)| {
            let name = name.trim();
            name == service::admins::SECURE_SESSION_COOKIE
                || name == service::admins::PLAIN_SESSION_COOKIE
        });
    if !has_cookie {
        return Ok(());
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    if host.is_some_and(|h| expected.accepts(h)) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "wrong_host",
        format!(
            "requests with the dashboard's cookie must be addressed to {} (this server's --public-url)",
            expected.public
        ),
    ))
}

/// Dashboard calls that change something (every method but GET, HEAD and OPTIONS outside the
/// bearer-key API under `/api/v1/`), and the reads in [`COOKIE_READ_PREFIXES`], must come from
/// the dashboard's own pages. A browser's `Sec-Fetch-Site` decides when it is sent:
/// `same-origin` (or `none`: typed by the user) passes, anything else is refused. Browsers too
/// old to send it are judged by `Origin`, which must name the host the request was sent to.
/// Requests with neither header come from no browser, so no page can have forged them.
fn same_origin(req: &Request) -> Result<(), ApiError> {
    let path = req.uri().path();
    let cookie_read = COOKIE_READ_PREFIXES.iter().any(|p| path.starts_with(p));
    if (matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) && !cookie_read)
        || path.starts_with("/api/v1/")
    {
        return Ok(());
    }
    let refuse = |why: &str| {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_origin_request",
            format!("{why}: the dashboard only accepts this from its own pages"),
        ))
    };
    let headers = req.headers();
    if let Some(site) = headers.get("sec-fetch-site") {
        if !matches!(site.as_bytes(), b"same-origin" | b"none") {
            return refuse("the request came from another site");
        }
        return Ok(());
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| url::Url::parse(o).ok())
            .and_then(|u| {
                let host = u.host_str()?.to_owned();
                Some(match u.port() {
                    Some(p) => format!("{host}:{p}"),
                    None => host,
                })
            });
        if origin_host.is_none() || origin_host.as_deref() != host {
            return refuse("the request's Origin is not this server");
        }
    }
    Ok(())
}

/// Content-Security-Policy of answers that did not set their own (JSON, the API docs page):
/// nothing may run, nothing may frame them.
const DEFAULT_CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// Security headers on every answer; 500 bodies replaced by a generic one that names the
/// request id (the details are in the log). Runs after the request's task-local context has
/// ended, so the id is the one passed in, the same as the log's and `X-Request-Id`.
fn finish(mut response: Response, id: &str) -> Response {
    if response.status() == StatusCode::INTERNAL_SERVER_ERROR && !is_server_fn_error(&response) {
        tracing::error!(request_id = id, "answered 500");
        response = ApiError::internal_for(id).into_response();
    }
    let h = response.headers_mut();
    let set = |h: &mut HeaderMap, name: &'static str, value: &'static str| {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set(h, "content-security-policy", DEFAULT_CSP);
    set(h, "x-content-type-options", "nosniff");
    set(h, "x-frame-options", "DENY");
    set(h, "referrer-policy", "no-referrer");
    set(h, "cross-origin-opener-policy", "same-origin");
    if let Ok(v) = HeaderValue::from_str(id) {
        h.insert("x-request-id", v);
    }
    response
}

/// Server functions answer their errors in their own encoding, which the dashboard decodes; they
/// are made generic where they are produced (see the dashboard's error helpers).
fn is_server_fn_error(response: &Response) -> bool {
    response.headers().contains_key("serverfnerror")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_request_past_its_time_limit_gets_a_json_503() {
        let slow = axum::Router::new().route(
            "/slow",
            axum::routing::get(|| tokio::time::sleep(Duration::from_secs(3600))),
        );
        let slow = protect(slow, GuardConfig::default());
        tokio::time::pause();
        let request = Request::get("/slow").body(Body::empty()).unwrap();
        let response = slow.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().contains_key("x-request-id"));
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "timed_out", "{v}");
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxies = TrustedProxies::parse("10.0.0.0/8, 192.0.2.7").unwrap();
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "203.0.113.9, 10.1.1.1".parse().unwrap());
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        // From a trusted proxy: the right-most untrusted entry.
        assert_eq!(
            proxies.client_address(ip("10.2.2.2"), &h),
            ip("203.0.113.9")
        );
        assert_eq!(
            proxies.client_address(ip("192.0.2.7"), &h),
            ip("203.0.113.9")
        );
        // From anyone else: the peer, whatever the header says.
        assert_eq!(
            proxies.client_address(ip("198.51.100.1"), &h),
            ip("198.51.100.1")
        );
        // A trusted proxy without the header: the proxy itself.
        assert_eq!(
            proxies.client_address(ip("10.2.2.2"), &HeaderMap::new()),
            ip("10.2.2.2")
        );
        assert!(TrustedProxies::parse("10.0.0.0/8,nonsense").is_err());
    }
}
