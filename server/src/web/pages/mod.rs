//! The pages, one module per part of the workspace.

pub mod account;
pub mod admin;
pub mod auth;
pub mod catalogue;
pub mod editor;
pub mod home;
pub mod migration;
pub mod portal;
pub mod process_tests;
pub mod processes;
pub mod queue;
pub mod queue_filter;
pub mod saved_filters;
pub mod ticket;

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

/// The address a request came from, for slowing down password guessing. Behind a reverse proxy
/// on the same machine (the connection comes from a loopback address) it is the first address
/// of `X-Forwarded-For`, which that proxy sets; from anywhere else the header is ignored, so a
/// client cannot choose its own address.
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let forwarded = || {
            parts
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .and_then(|a| a.trim().parse::<IpAddr>().ok())
        };
        Ok(ClientAddr(match peer {
            Some(p) if p.is_loopback() => forwarded().or(Some(p)),
            other => other,
        }))
    }
}
