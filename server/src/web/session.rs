//! Web sessions: the cookie that carries one, and the extractor that turns it into the same
//! [`Ctx`] a bearer token gives the API, so every page acts with exactly the API's tenant,
//! user and roles.
//!
//! The cookie holds a random 256-bit secret; the identity database keeps its SHA-256, the
//! user, the session's CSRF token and its expiry ([`crate::identity::store::Session`]). It is
//! `HttpOnly` (scripts cannot read it), `SameSite=Lax` (other sites' forms do not carry it;
//! links from a notification e-mail still arrive signed in, which `Strict` would prevent) and
//! `Secure` when the request came over TLS (a proxy's `X-Forwarded-Proto: https`).

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method};
use chrono::{DateTime, TimeDelta, Utc};

use super::WebError;
use crate::identity::store::Session;
use crate::serve::app::App;
use crate::serve::auth::Ctx;
use crate::serve::tenants::Backend;

/// The session cookie's name.
pub const COOKIE_NAME: &str = "itsmflow_session";

/// How long a session lasts from signing in: a working day and some, so an agent signs in
/// once a day and a forgotten session does not stay open for a week.
pub const LIFETIME: TimeDelta = TimeDelta::hours(12);

/// A signed-in request: the API's context for the user, and the session it came with.
pub struct Signed<S: itsmflow_engine::store::Store> {
    pub ctx: Ctx<S>,
    pub session: Session,
    /// The cookie's secret (to end this session, or keep it when the password changes).
    pub secret: String,
}

/// The value of cookie `name` in the request, if it sent one.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// Whether the browser reached us over TLS, directly or through a proxy that says so.
pub fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .next()
                .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
        })
}

/// A `Set-Cookie` value. `max_age` 0 deletes the cookie.
pub fn set_cookie(
    name: &str,
    value: &str,
    max_age: i64,
    same_site: &str,
    secure: bool,
) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite={same_site}{secure}"
    ))
    .ok()
}

/// The cookie that starts a session expiring at `expires_at`.
pub fn session_cookie(
    headers: &mut HeaderMap,
    secret: &str,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
    secure: bool,
) {
    let max_age = (expires_at - now).num_seconds().max(0);
    if let Some(v) = set_cookie(COOKIE_NAME, secret, max_age, "Lax", secure) {
        headers.append(SET_COOKIE, v);
    }
}

/// The cookie that ends the session in the browser.
pub fn clear_cookie(headers: &mut HeaderMap, secure: bool) {
    if let Some(v) = set_cookie(COOKIE_NAME, "", 0, "Lax", secure) {
        headers.append(SET_COOKIE, v);
    }
}

impl<B: Backend> FromRequestParts<Arc<App<B>>> for Signed<B::Store> {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<App<B>>,
    ) -> Result<Self, Self::Rejection> {
        // A page asked for without a session goes to the sign-in page and back; a form posted
        // without one is refused (there is no CSRF token to check it against).
        let not_signed_in = || {
            if parts.method == Method::GET || parts.method == Method::HEAD {
                WebError::SignIn {
                    next: parts
                        .uri
                        .path_and_query()
                        .map(|p| p.as_str().to_string())
                        .unwrap_or_else(|| "/".into()),
                }
            } else {
                WebError::Forbidden(
                    "your session has ended: sign in again, then repeat what you were doing".into(),
                )
            }
        };
        let Some(secret) = cookie(&parts.headers, COOKIE_NAME).filter(|s| !s.is_empty()) else {
            return Err(not_signed_in());
        };
        let now = app.clock.now();
        let session = app
            .identities
            .session(secret, now)
            .await
            .map_err(|e| WebError::Api(crate::serve::error::ApiError::unavailable(e)))?;
        let Some(session) = session else {
            return Err(not_signed_in());
        };
        let tenant = app.tenants.get(&session.principal.tenant).await?;
        tracing::Span::current().record("user", session.principal.user.as_str());
        tracing::Span::current().record("tenant", session.principal.tenant.as_str());
        Ok(Signed {
            ctx: Ctx {
                who: session.principal.clone(),
                tenant,
                limits: app.limits,
            },
            session,
            secret: secret.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(
            COOKIE,
            HeaderValue::from_static("a=1; itsmflow_session=xyz; b=2"),
        );
        assert_eq!(cookie(&h, COOKIE_NAME), Some("xyz"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "c"), None);
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("x=1"));
        h.append(COOKIE, HeaderValue::from_static("itsmflow_session=abc"));
        assert_eq!(cookie(&h, COOKIE_NAME), Some("abc"));
    }

    #[test]
    fn session_cookies_are_http_only_lax_and_secure_over_tls() {
        let now = Utc::now();
        let mut h = HeaderMap::new();
        session_cookie(&mut h, "s3cret", now + LIFETIME, now, false);
        let v = h.get(SET_COOKIE).unwrap().to_str().unwrap();
        assert_eq!(
            v,
            "itsmflow_session=s3cret; Path=/; Max-Age=43200; HttpOnly; SameSite=Lax"
        );
        let mut h = HeaderMap::new();
        session_cookie(&mut h, "s3cret", now + LIFETIME, now, true);
        assert!(h
            .get(SET_COOKIE)
            .unwrap()
            .to_str()
            .unwrap()
            .ends_with("; HttpOnly; SameSite=Lax; Secure"));
        let mut h = HeaderMap::new();
        clear_cookie(&mut h, false);
        assert!(h
            .get(SET_COOKIE)
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("itsmflow_session=; Path=/; Max-Age=0;"));
    }

    #[test]
    fn tls_is_what_the_proxy_says() {
        let mut h = HeaderMap::new();
        assert!(!over_tls(&h));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(over_tls(&h));
        h.insert("x-forwarded-proto", HeaderValue::from_static("http"));
        assert!(!over_tls(&h));
        h.insert("x-forwarded-proto", HeaderValue::from_static("HTTPS, http"));
        assert!(over_tls(&h));
    }
}
