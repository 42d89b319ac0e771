//! Authenticating requests: the bearer token decides the user, their roles and their tenant.
//!
//! Lookups are cached for a few seconds, since agents make many requests a minute. A revoked
//! token stops working at once on the node that revoked it and within `CACHE_TTL` on others;
//! expiry is checked on every request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};

use super::app::App;
use super::error::ApiError;
use super::tenants::{Backend, Tenant};
use crate::identity::store::Lookup;
use crate::identity::{token_hash, Principal};

const CACHE_TTL: Duration = Duration::from_secs(5);
const CACHE_MAX: usize = 100_000;

#[derive(Default)]
pub struct AuthCache {
    entries: Mutex<HashMap<String, Cached>>,
}

struct Cached {
    principal: Principal,
    expires_at: Option<DateTime<Utc>>,
    at: Instant,
}

impl AuthCache {
    fn get(&self, hash: &str, now: DateTime<Utc>) -> Option<Principal> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let c = entries.get(hash)?;
        if c.at.elapsed() > CACHE_TTL || c.expires_at.is_some_and(|e| e <= now) {
            return None;
        }
        Some(c.principal.clone())
    }

    fn put(&self, hash: String, principal: Principal, expires_at: Option<DateTime<Utc>>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CACHE_MAX {
            entries.retain(|_, c| c.at.elapsed() <= CACHE_TTL);
        }
        entries.insert(
            hash,
            Cached {
                principal,
                expires_at,
                at: Instant::now(),
            },
        );
    }

    /// Forget a tenant's cached tokens of one user (roles changed) or one token (revoked).
    pub fn forget(&self, tenant: &str, user: Option<&str>, token: Option<i64>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|_, c| {
            let p = &c.principal;
            !(p.tenant == tenant
                && user.is_none_or(|u| p.user == u)
                && token.is_none_or(|t| p.token_id == t))
        });
    }
}

/// The caller of a request and their tenant's engine.
pub struct Ctx<S: itsmflow_engine::store::Store> {
    pub who: Principal,
    pub tenant: Arc<Tenant<S>>,
    pub limits: super::app::Limits,
}

impl<S: itsmflow_engine::store::Store> Ctx<S> {
    /// The caller as the engine sees them: their name and roles.
    pub fn actor(&self) -> itsmflow_engine::runtime::Actor {
        itsmflow_engine::runtime::Actor {
            name: self.who.user.as_str().into(),
            roles: self.who.roles.clone(),
        }
    }

    pub fn require_agent(&self) -> Result<(), ApiError> {
        if self.who.is_requester_only() {
            return Err(ApiError::forbidden(
                "this needs an agent's role (a process role other than `requester`); \
                 requesters raise tickets and act on their own through actions",
            ));
        }
        Ok(())
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        if !self.who.is_admin() {
            return Err(ApiError::forbidden("this needs the `admin` role"));
        }
        Ok(())
    }

    pub fn require_publisher(&self) -> Result<(), ApiError> {
        if !self.who.may_publish() {
            return Err(ApiError::forbidden(
                "publishing definitions needs the `process_manager` or `admin` role",
            ));
        }
        Ok(())
    }
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let header = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("send `Authorization: Bearer <token>`"))?;
    let value = header
        .to_str()
        .map_err(|_| ApiError::unauthorized("the Authorization header is not text"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| ApiError::unauthorized("use `Authorization: Bearer <token>`"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::unauthorized(
            "use `Authorization: Bearer <token>`",
        ));
    }
    Ok(token.trim())
}

impl<B: Backend> App<B> {
    pub async fn authenticate(&self, token: &str) -> Result<Principal, ApiError> {
        let now = self.clock.now();
        let hash = token_hash(token);
        if let Some(p) = self.auth_cache.get(&hash, now) {
            return Ok(p);
        }
        match self
            .identities
            .lookup(token, now)
            .await
            .map_err(ApiError::unavailable)?
        {
            Lookup::Valid {
                principal,
                expires_at,
            } => {
                self.auth_cache.put(hash, principal.clone(), expires_at);
                Ok(principal)
            }
            Lookup::Unknown => Err(ApiError::unauthorized("the token is not valid")),
            Lookup::Revoked => Err(ApiError::unauthorized("the token has been revoked")),
            Lookup::Expired => Err(ApiError::unauthorized("the token has expired")),
        }
    }
}

impl<B: Backend> FromRequestParts<Arc<App<B>>> for Ctx<B::Store> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<App<B>>,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)?;
        let who = app.authenticate(token).await?;
        let tenant = app.tenants.get(&who.tenant).await?;
        tracing::Span::current().record("user", who.user.as_str());
        tracing::Span::current().record("tenant", who.tenant.as_str());
        Ok(Ctx {
            who,
            tenant,
            limits: app.limits,
        })
    }
}
