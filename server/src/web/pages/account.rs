//! The account page: who you are, your password, and (administrators) other users' passwords.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use serde::Deserialize;

use crate::identity::password;
use crate::serve::app::App;
use crate::serve::error::ApiError;
use crate::serve::routes::admin::change_password;
use crate::serve::tenants::Backend;
use crate::web::csrf::Posted;
use crate::web::layout::{self, Section, Viewer};
use crate::web::session::Signed;
use crate::web::WebResult;

type S<B> = State<Arc<App<B>>>;

#[derive(Deserialize, Default)]
pub struct AccountQuery {
    done: Option<String>,
}

async fn render<B: Backend>(
    app: &App<B>,
    signed: &Signed<B::Store>,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> WebResult<Response> {
    let who = &signed.ctx.who;
    let users = if who.is_admin() {
        app.identities
            .users(&who.tenant)
            .await
            .map_err(ApiError::unavailable)?
    } else {
        Vec::new()
    };
    let has_password = app
        .identities
        .password_hash(&who.tenant, &who.user)
        .await
        .map_err(ApiError::unavailable)?
        .is_some();
    let new_password_fields = |prefix: &str| -> Markup {
        html! {
            label for=(format!("{prefix}password")) { "New password" }
            input id=(format!("{prefix}password")) type="password" name="password" autocomplete="new-password"
                minlength=(password::MIN_LENGTH) required aria-describedby=(format!("{prefix}hint"));
            p.hint id=(format!("{prefix}hint")) { "At least " (password::MIN_LENGTH) " characters." }
            label for=(format!("{prefix}confirm")) { "New password again" }
            input id=(format!("{prefix}confirm")) type="password" name="confirm" autocomplete="new-password" required;
        }
    };
    let body = html! {
        h1 { "Account" }
        @if let Some(n) = notice { p.notice role="status" { (n) } }
        @if let Some(e) = error { p.error role="alert" { (e) } }
        section.card aria-labelledby="me" {
            h2 #me { "You" }
            dl.fields {
                dt { "User" } dd { (who.user) }
                dt { "Organisation" } dd { (who.tenant) }
                dt { "Roles" } dd { (who.roles.join(", ")) }
                dt { "Session ends" } dd { (signed.session.expires_at.format("%Y-%m-%d %H:%M UTC")) }
            }
        }
        section.card aria-labelledby="own" {
            h2 #own { "Change your password" }
            p.hint { "Your other sessions end when you change it." }
            form method="post" action="/account/password" {
                input type="hidden" name="csrf" value=(signed.session.csrf);
                input type="hidden" name="user" value=(who.user);
                @if has_password {
                    label for="old_password" { "Current password" }
                    input #old_password type="password" name="old_password" autocomplete="current-password" required;
                }
                (new_password_fields("own-"))
                p { button type="submit" { "Change password" } }
            }
        }
        @if who.is_admin() {
            section.card aria-labelledby="others" {
                h2 #others { "Set a user's password" }
                p.hint { "As an administrator. The user's sessions end; their API tokens stay." }
                form method="post" action="/account/password" {
                    input type="hidden" name="csrf" value=(signed.session.csrf);
                    label for="user" { "User" }
                    select #user name="user" required {
                        @for u in users.iter().filter(|u| u.name != who.user) {
                            option value=(u.name) { (u.name) " (" (u.roles.join(", ")) ")" }
                        }
                    }
                    (new_password_fields("other-"))
                    p { button type="submit" { "Set password" } }
                }
            }
        }
    };
    let viewer = Viewer {
        who,
        csrf: &signed.session.csrf,
    };
    Ok(layout::send(
        status,
        layout::page("Account", Some(&viewer), Section::Account, body),
    ))
}

/// `GET /account`.
pub async fn page<B: Backend>(
    State(app): S<B>,
    signed: Signed<B::Store>,
    Query(q): Query<AccountQuery>,
) -> WebResult<Response> {
    let notice = q.done.as_deref().map(|user| {
        if user == signed.ctx.who.user {
            "Your password is changed.".to_string()
        } else {
            format!("The password of {user} is set.")
        }
    });
    render(&app, &signed, StatusCode::OK, notice.as_deref(), None).await
}

/// `POST /account/password`: the API's own password change (same checks), keeping the session
/// it is made from.
pub async fn password<B: Backend>(
    State(app): S<B>,
    posted: Posted<B::Store>,
) -> WebResult<Response> {
    let Posted { signed, fields } = posted;
    let user = fields
        .get("user")
        .unwrap_or(&signed.ctx.who.user)
        .to_string();
    let new = fields.get("password").unwrap_or_default().to_string();
    if Some(new.as_str()) != fields.get("confirm") {
        return render(
            &app,
            &signed,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            Some("The two new passwords differ; nothing was changed."),
        )
        .await;
    }
    let old = fields.get("old_password").map(str::to_string);
    match change_password(&app, &signed.ctx.who, &user, new, old, Some(&signed.secret)).await {
        Ok(()) => Ok(layout::see_other(&format!(
            "/account?done={}",
            super::auth::encode(&user)
        ))),
        Err(e) => {
            let detail = format!("{}: {}", e.title, e.detail);
            render(&app, &signed, e.status, None, Some(&detail)).await
        }
    }
}
