//! Which web pages may use the API from a browser: its own (same origin), and those listed in
//! `ALLOWED_ORIGINS`. Without this, any page on the internet could open WebSockets and event
//! streams to a replica from its visitors' browsers, which send their `Origin` but are not
//! stopped by the same-origin policy for a WebSocket.
//!
//! A request that carries an `Origin` (browsers send it on every WebSocket handshake and every
//! cross-origin request) is answered only if that origin is the page's own — its host and port
//! are those the request was sent to (`Host`, or `X-Forwarded-Host` from a proxy that rewrites
//! it) — or listed; anything else gets `403`. A listed cross origin gets the CORS headers that
//! let its page read the answer. A request without an `Origin` (curl, the load test, a native
//! app) is not a browser's and is answered.

use std::str::FromStr;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::{ApiError, ShardApi};

/// The origins, besides its own, whose pages may use the API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedOrigins {
    /// `*`: every origin.
    any: bool,
    /// Each as `scheme://host[:port]`, lower case, without a default port.
    listed: Vec<String>,
}

/// An origin that is not `scheme://host[:port]`.
#[derive(Debug, thiserror::Error)]
#[error(
    "{0:?} is not an origin: write scheme://host[:port] (https://scores.example.com), \
     several separated by commas, or * for any"
)]
pub struct BadOrigin(String);

impl FromStr for AllowedOrigins {
    type Err = BadOrigin;

    /// `https://a.example, http://b.example:8080`, or `*`; empty: none but the API's own.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut allowed = AllowedOrigins::default();
        for origin in text.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            if origin == "*" {
                allowed.any = true;
                continue;
            }
            let origin = Origin::parse(origin)
                .filter(|o| o.scheme == "http" || o.scheme == "https")
                .ok_or_else(|| BadOrigin(livescore_domain::excerpt(origin)))?;
            allowed.listed.push(origin.to_string());
        }
        Ok(allowed)
    }
}

impl std::fmt::Display for AllowedOrigins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut all: Vec<&str> = self.listed.iter().map(String::as_str).collect();
        if self.any {
            all.push("*");
        }
        f.write_str(&all.join(","))
    }
}

/// An origin's parts, lower case; the port only if it is not the scheme's default.
#[derive(Debug, PartialEq, Eq)]
struct Origin<'a> {
    scheme: String,
    host: String,
    port: Option<&'a str>,
}

impl<'a> Origin<'a> {
    fn parse(text: &'a str) -> Option<Origin<'a>> {
        let (scheme, authority) = text.split_once("://")?;
        let valid_scheme = !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
        if !valid_scheme {
            return None;
        }
        let scheme = scheme.to_ascii_lowercase();
        let (host, port) = split_authority(authority)?;
        let default = match scheme.as_str() {
            "http" => Some("80"),
            "https" => Some("443"),
            _ => None,
        };
        Some(Origin {
            scheme,
            host: host.to_ascii_lowercase(),
            port: port.filter(|port| Some(*port) != default),
        })
    }
}

impl std::fmt::Display for Origin<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

/// `host[:port]` (the host may be an IPv6 literal in brackets); nothing else (no path, user).
fn split_authority(authority: &str) -> Option<(&str, Option<&str>)> {
    if authority.is_empty() || authority.contains(['/', '@', '?', '#', ' ']) {
        return None;
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => {
            let end = rest.find(']')?;
            let host = &authority[..end + 2];
            match &rest[end + 1..] {
                "" => (host, None),
                after => (host, Some(after.strip_prefix(':')?)),
            }
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    (!host.is_empty() && port_ok).then_some((host, port))
}

/// What the policy says of a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No `Origin`: not a browser's request, or a same-origin one that does not say.
    NoOrigin,
    /// From a page of the API's own origin.
    SameOrigin,
    /// From a listed origin: answered with CORS headers for it.
    Listed(HeaderValue),
    Refused,
}

impl AllowedOrigins {
    /// What the policy says of a request with these headers.
    pub fn check(&self, headers: &HeaderMap) -> Verdict {
        let Some(value) = headers.get(header::ORIGIN) else {
            return Verdict::NoOrigin;
        };
        let Some(origin) = value.to_str().ok().and_then(Origin::parse) else {
            // "null" (a sandboxed page, a file), or garbage.
            return self.or_any(value);
        };
        let served_as = [header::HOST.as_str(), "x-forwarded-host"]
            .into_iter()
            .filter_map(|name| headers.get(name)?.to_str().ok());
        if served_as
            .into_iter()
            .any(|host| same_authority(&origin, host))
        {
            return Verdict::SameOrigin;
        }
        if self.listed.contains(&origin.to_string()) {
            return Verdict::Listed(value.clone());
        }
        self.or_any(value)
    }

    fn or_any(&self, value: &HeaderValue) -> Verdict {
        if self.any {
            Verdict::Listed(value.clone())
        } else {
            Verdict::Refused
        }
    }
}

/// Whether `origin` names the host and port a request was sent to (`Host`: `host[:port]`).
fn same_authority(origin: &Origin, host: &str) -> bool {
    let Some((name, port)) = split_authority(host) else {
        return false;
    };
    if !name.eq_ignore_ascii_case(&origin.host) {
        return false;
    }
    let default = match origin.scheme.as_str() {
        "https" => "443",
        _ => "80",
    };
    // A Host without a port means the default port of the scheme the page was loaded with.
    port.unwrap_or(default) == origin.port.unwrap_or(default)
}

/// The policy, as a layer of the API's routes.
pub async fn enforce(State(api): State<ShardApi>, request: Request, next: Next) -> Response {
    match api.config.origins.check(request.headers()) {
        Verdict::NoOrigin | Verdict::SameOrigin => next.run(request).await,
        Verdict::Listed(origin) => {
            let mut response = next.run(request).await;
            let headers = response.headers_mut();
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            headers.append(header::VARY, HeaderValue::from_static("origin"));
            response
        }
        Verdict::Refused => ApiError(
            StatusCode::FORBIDDEN,
            "this origin may not use the API: serve the page from the API's own origin, or \
             list it in ALLOWED_ORIGINS"
                .into(),
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn request(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
        }
        headers
    }

    #[test]
    fn a_page_of_the_apis_own_origin_is_answered() {
        let none = AllowedOrigins::default();
        for (origin, host) in [
            ("http://localhost:8080", "localhost:8080"),
            ("http://LocalHost:8080", "localhost:8080"),
            ("https://scores.example", "scores.example"),
            ("https://scores.example:443", "scores.example"),
            ("http://scores.example", "scores.example:80"),
            ("http://[::1]:8080", "[::1]:8080"),
        ] {
            assert_eq!(
                none.check(&request(Some(origin), host)),
                Verdict::SameOrigin,
                "{origin} on {host}"
            );
        }
        assert_eq!(
            none.check(&request(None, "localhost:8080")),
            Verdict::NoOrigin
        );
    }

    #[test]
    fn any_other_page_is_refused_unless_listed() {
        let none = AllowedOrigins::default();
        for (origin, host) in [
            ("http://localhost:8081", "localhost:8080"),
            ("https://evil.example", "scores.example"),
            ("http://scores.example.evil.example", "scores.example"),
            ("https://scores.example:8443", "scores.example"),
            ("null", "scores.example"),
            ("garbage", "scores.example"),
        ] {
            assert_eq!(
                none.check(&request(Some(origin), host)),
                Verdict::Refused,
                "{origin} on {host}"
            );
        }
        let listed: AllowedOrigins = " https://fans.example, http://localhost:3000 "
            .parse()
            .unwrap();
        let from_fans = request(Some("https://fans.example"), "api.example");
        assert!(
            matches!(listed.check(&from_fans), Verdict::Listed(o) if o == "https://fans.example")
        );
        let from_port = request(Some("http://localhost:3000"), "localhost:8080");
        assert!(matches!(listed.check(&from_port), Verdict::Listed(_)));
        let other = request(Some("https://evil.example"), "api.example");
        assert_eq!(listed.check(&other), Verdict::Refused);
        let any: AllowedOrigins = "*".parse().unwrap();
        assert!(matches!(any.check(&other), Verdict::Listed(_)));
    }

    #[test]
    fn a_proxy_that_rewrites_the_host_says_where_the_request_went() {
        let mut headers = request(Some("https://scores.example"), "10.0.0.7:8080");
        assert_eq!(AllowedOrigins::default().check(&headers), Verdict::Refused);
        headers.insert(
            "x-forwarded-host",
            HeaderValue::from_static("scores.example"),
        );
        assert_eq!(
            AllowedOrigins::default().check(&headers),
            Verdict::SameOrigin
        );
    }

    #[test]
    fn the_setting_takes_origins_only() {
        let parsed: AllowedOrigins = "HTTPS://Fans.Example:443,http://a.example:8080"
            .parse()
            .unwrap();
        assert_eq!(
            parsed.to_string(),
            "https://fans.example,http://a.example:8080"
        );
        assert_eq!(
            "".parse::<AllowedOrigins>().unwrap(),
            AllowedOrigins::default()
        );
        for bad in [
            "fans.example",
            "https://fans.example/path",
            "ftp://fans.example",
            "https://",
            "https://a.example:80x",
            "https://user@a.example",
        ] {
            let err = bad.parse::<AllowedOrigins>().unwrap_err();
            assert!(err.to_string().contains("is not an origin"), "{bad}: {err}");
        }
    }
}
