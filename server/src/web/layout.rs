//! The frame of every page: landmarks (banner, navigation, main), a skip link, the signed-in
//! user with a sign-out button, and the headers every page is sent with.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use super::assets;
use crate::identity::Principal;

/// Which part of the navigation a page belongs to (marked `aria-current`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Portal,
    Queues,
    Processes,
    Admin,
    Account,
    None,
}

/// Who is signed in, as the frame shows them: their name, tenant and the token their
/// sign-out form carries.
pub struct Viewer<'a> {
    pub who: &'a Principal,
    pub csrf: &'a str,
}

/// A whole page.
pub fn page(title: &str, viewer: Option<&Viewer>, section: Section, body: Markup) -> Markup {
    let current = |s: Section| if s == section { Some("page") } else { None };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · itsmflow" }
                link rel="icon" href=(assets::url("favicon.svg")) type="image/svg+xml";
                link rel="stylesheet" href=(assets::url("style.css"));
                script src=(assets::url("app.js")) defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    nav aria-label="Main" {
                        a.brand href="/" { "itsmflow" }
                        @if let Some(v) = viewer {
                            a href="/portal" aria-current=[current(Section::Portal)] { "Portal" }
                            @if !v.who.is_requester_only() {
                                a href="/queues" aria-current=[current(Section::Queues)] { "Queues" }
                            }
                            @if v.who.may_publish() {
                                a href="/processes" aria-current=[current(Section::Processes)] { "Processes" }
                            }
                            @if v.who.is_admin() {
                                a href="/admin" aria-current=[current(Section::Admin)] { "Admin" }
                            }
                            a href="/account" aria-current=[current(Section::Account)] { "Account" }
                            span.who {
                                span { (v.who.user) " · " (v.who.tenant) }
                                form method="post" action="/sign-out" {
                                    input type="hidden" name="csrf" value=(v.csrf);
                                    button type="submit" { "Sign out" }
                                }
                            }
                        }
                    }
                }
                main #main tabindex="-1" { (body) }
            }
        }
    }
}

/// Send a page: HTML, never cached (it shows one user's data), with a content security policy
/// that allows only our own scripts and styles.
pub fn send(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup.into_string()).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    no_store(h);
    response
}

/// Headers for responses that show one user's data.
pub fn no_store(h: &mut axum::http::HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// Security headers on everything the web part sends (pages, fragments, redirects).
pub fn harden(h: &mut axum::http::HeaderMap) {
    h.entry("content-security-policy")
        .or_insert(HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ));
    h.entry("x-content-type-options")
        .or_insert(HeaderValue::from_static("nosniff"));
    h.entry("referrer-policy")
        .or_insert(HeaderValue::from_static("same-origin"));
    h.entry("x-frame-options")
        .or_insert(HeaderValue::from_static("DENY"));
}

/// A 303 to `to` (after a form: the browser then GETs the page, and reloading it does not post
/// the form again).
pub fn see_other(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    no_store(response.headers_mut());
    response
}
