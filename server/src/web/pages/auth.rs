//! Signing in and out, and setting a first password through a one-time setup link.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header::{RETRY_AFTER, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;

use super::ClientAddr;
use crate::database::{valid_tenant_name, DEFAULT_TENANT};
use crate::identity::{new_token, password, valid_user_name};
use crate::serve::app::App;
use crate::serve::error::ApiError;
use crate::serve::tenants::Backend;
use crate::web::csrf::{self, Fields, Posted};
use crate::web::layout::{self, Section};
use crate::web::session::{self, over_tls};
use crate::web::{safe_next, WebError, WebResult};

type S<B> = State<Arc<App<B>>>;

/// The cookie holding the sign-in form's CSRF token (there is no session yet to hold it).
const SIGN_IN_COOKIE: &str = "itsmflow_signin";

/// Percent-encode text for a query string.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Deserialize, Default)]
pub struct SignInQuery {
    next: Option<String>,
    /// Shown once after setting a password.
    done: Option<String>,
}

/// What the sign-in form shows besides its fields.
struct FormState<'a> {
    token: &'a str,
    next: &'a str,
    tenant: &'a str,
    user: &'a str,
    error: Option<String>,
    notice: Option<&'a str>,
    /// Whether to ask for the tenant (only when there is more than one).
    many_tenants: bool,
}

fn sign_in_page(f: &FormState) -> Markup {
    let body = html! {
        div.card.narrow {
            h1 { "Sign in" }
            @if let Some(n) = f.notice { p.notice role="status" { (n) } }
            @if let Some(e) = &f.error { p.error role="alert" #sign-in-error { (e) } }
            form method="post" action="/sign-in" {
                input type="hidden" name="csrf" value=(f.token);
                input type="hidden" name="next" value=(f.next);
                @if f.many_tenants {
                    label for="tenant" { "Organisation" }
                    input #tenant type="text" name="tenant" value=(f.tenant) autocomplete="organization" required;
                } @else {
                    input type="hidden" name="tenant" value=(f.tenant);
                }
                label for="user" { "User name" }
                input #user type="text" name="user" value=(f.user) autocomplete="username" required autofocus
                    aria-describedby=[f.error.as_ref().map(|_| "sign-in-error")];
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password" required;
                p { button type="submit" { "Sign in" } }
            }
            p.hint { "No password yet? An administrator sets one for you (Account page or API)." }
        }
    };
    layout::page("Sign in", None, Section::None, body)
}

/// The sign-in form's token: the one the browser already holds (several tabs open on the
/// form all stay usable), or a new one.
fn sign_in_token(headers: &HeaderMap) -> (String, bool) {
    match session::cookie(headers, SIGN_IN_COOKIE).filter(|t| t.len() >= 32) {
        Some(t) => (t.to_string(), false),
        None => (new_token().unwrap_or_default(), true),
    }
}

fn with_sign_in_cookie(mut response: Response, token: &str, secure: bool) -> Response {
    if let Some(v) = session::set_cookie(SIGN_IN_COOKIE, token, 3600, "Strict", secure) {
        response.headers_mut().append(SET_COOKIE, v);
    }
    response
}

async fn many_tenants<B: Backend>(app: &App<B>) -> bool {
    app.identities
        .tenants()
        .await
        .map(|t| t.len() > 1)
        .unwrap_or(true)
}

/// `GET /sign-in`.
pub async fn form<B: Backend>(
    State(app): S<B>,
    headers: HeaderMap,
    Query(q): Query<SignInQuery>,
) -> WebResult<Response> {
    let (token, fresh) = sign_in_token(&headers);
    let next = safe_next(q.next.as_deref());
    let notice = q
        .done
        .is_some()
        .then_some("Your password is set. Sign in with it.");
    let page = sign_in_page(&FormState {
        token: &token,
        next: &next,
        tenant: DEFAULT_TENANT,
        user: "",
        error: None,
        notice,
        many_tenants: many_tenants(&app).await,
    });
    let response = layout::send(StatusCode::OK, page);
    Ok(if fresh {
        with_sign_in_cookie(response, &token, over_tls(&headers))
    } else {
        response
    })
}

/// `POST /sign-in`: the form's token must match its cookie; attempts are refused while the
/// user or the address must wait ([`crate::web::throttle`]); a right password starts a
/// session.
pub async fn sign_in<B: Backend>(
    State(app): S<B>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> WebResult<Response> {
    let fields = Fields::parse(&body)?;
    let cookie_token = session::cookie(&headers, SIGN_IN_COOKIE).unwrap_or_default();
    let sent = fields.get(csrf::FIELD).unwrap_or_default();
    if cookie_token.is_empty() || !csrf::same(sent, cookie_token) {
        return Err(WebError::Forbidden(
            "this sign-in form is out of date or did not come from this site; reload the \
             sign-in page and try again"
                .into(),
        ));
    }
    let tenant = fields.get("tenant").unwrap_or(DEFAULT_TENANT).trim();
    let user = fields.get("user").unwrap_or_default().trim();
    let given = fields.get("password").unwrap_or_default();
    let next = safe_next(fields.get("next"));
    let secure = over_tls(&headers);
    let again = |status: StatusCode, error: String, many: bool| {
        layout::send(
            status,
            sign_in_page(&FormState {
                token: cookie_token,
                next: &next,
                tenant,
                user,
                error: Some(error),
                notice: None,
                many_tenants: many,
            }),
        )
    };
    let wait = app.throttle.retry_after(tenant, user, addr, Instant::now());
    if !wait.is_zero() {
        let seconds = wait.as_secs_f64().ceil() as u64;
        tracing::warn!(
            user,
            tenant,
            ?addr,
            seconds,
            "sign-in refused: too many failures"
        );
        let mut response = again(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many failed sign-ins. Wait {seconds} second{} before trying again.",
                if seconds == 1 { "" } else { "s" }
            ),
            many_tenants(&app).await,
        );
        if let Ok(v) = HeaderValue::from_str(&seconds.to_string()) {
            response.headers_mut().insert(RETRY_AFTER, v);
        }
        return Ok(response);
    }
    // A name that cannot exist is looked up all the same (as no one), so that every failure
    // takes the time of a password check.
    let stored = if valid_tenant_name(tenant) && valid_user_name(user) {
        app.identities
            .password_hash(tenant, user)
            .await
            .map_err(ApiError::unavailable)?
    } else {
        None
    };
    let ok = password::verify_blocking(given.to_string(), stored)
        .await
        .map_err(ApiError::internal)?;
    if !ok {
        app.throttle.failed(tenant, user, addr, Instant::now());
        tracing::info!(user, tenant, ?addr, "sign-in failed");
        return Ok(again(
            StatusCode::UNAUTHORIZED,
            "The user name or password is wrong.".into(),
            many_tenants(&app).await,
        ));
    }
    app.throttle.succeeded(tenant, user, addr);
    let now = app.clock.now();
    let new = app
        .identities
        .create_session(tenant, user, now, now + session::LIFETIME)
        .await
        .map_err(ApiError::unavailable)?;
    tracing::info!(user, tenant, "signed in");
    let mut response = layout::see_other(&next);
    session::session_cookie(
        response.headers_mut(),
        &new.secret,
        new.expires_at,
        now,
        secure,
    );
    if let Some(v) = session::set_cookie(SIGN_IN_COOKIE, "", 0, "Strict", secure) {
        response.headers_mut().append(SET_COOKIE, v);
    }
    Ok(response)
}

/// `POST /sign-out`.
pub async fn sign_out<B: Backend>(
    State(app): S<B>,
    headers: HeaderMap,
    posted: Posted<B::Store>,
) -> WebResult<Response> {
    app.identities
        .end_session(&posted.signed.secret)
        .await
        .map_err(ApiError::unavailable)?;
    let mut response = layout::see_other("/sign-in");
    session::clear_cookie(response.headers_mut(), over_tls(&headers));
    Ok(response)
}

fn setup_page(user: &str, tenant: &str, error: Option<&str>) -> Markup {
    let body = html! {
        div.card.narrow {
            h1 { "Set your password" }
            p { "For " strong { (user) } " in " (tenant) ". This link works once." }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form method="post" {
                label for="password" { "New password" }
                input #password type="password" name="password" autocomplete="new-password"
                    minlength=(password::MIN_LENGTH) required aria-describedby="password-hint";
                p.hint #password-hint { "At least " (password::MIN_LENGTH) " characters." }
                label for="confirm" { "New password again" }
                input #confirm type="password" name="confirm" autocomplete="new-password" required;
                p { button type="submit" { "Set password" } }
            }
        }
    };
    layout::page("Set your password", None, Section::None, body)
}

fn dead_link() -> WebError {
    WebError::Api(ApiError::not_found(
        "this setup link is not valid: it was used already, has expired, or never existed. \
         Ask an administrator to set your password",
    ))
}

/// `GET /setup/{secret}`: the form to set a password, if the link is live.
pub async fn setup_form<B: Backend>(
    State(app): S<B>,
    Path(secret): Path<String>,
) -> WebResult<Response> {
    let (tenant, user) = app
        .identities
        .setup_link(&secret, app.clock.now())
        .await
        .map_err(ApiError::unavailable)?
        .ok_or_else(dead_link)?;
    Ok(layout::send(
        StatusCode::OK,
        setup_page(&user, &tenant, None),
    ))
}

/// `POST /setup/{secret}`: set the password and spend the link. The link's secret is what
/// proves the form came from its holder (no other site can know it), so it needs no other
/// token.
pub async fn setup<B: Backend>(
    State(app): S<B>,
    Path(secret): Path<String>,
    body: Bytes,
) -> WebResult<Response> {
    let fields = Fields::parse(&body)?;
    let now = app.clock.now();
    let (tenant, user) = app
        .identities
        .setup_link(&secret, now)
        .await
        .map_err(ApiError::unavailable)?
        .ok_or_else(dead_link)?;
    let new = fields.get("password").unwrap_or_default();
    let problem = if new != fields.get("confirm").unwrap_or_default() {
        Some("The two passwords differ.".to_string())
    } else {
        password::acceptable(new).err().map(|e| format!("{e}."))
    };
    if let Some(p) = problem {
        return Ok(layout::send(
            StatusCode::UNPROCESSABLE_ENTITY,
            setup_page(&user, &tenant, Some(&p)),
        ));
    }
    let hash = password::hash_blocking(new.to_string())
        .await
        .map_err(ApiError::internal)?;
    app.identities
        .use_setup_link(&secret, &hash, now)
        .await
        .map_err(ApiError::unavailable)?
        .ok_or_else(dead_link)?;
    tracing::info!(%user, %tenant, "password set through a setup link");
    Ok(layout::see_other("/sign-in?done=1").into_response())
}
