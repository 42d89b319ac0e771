//! Administrators' pages: users (create, roles, manager and e-mail, password, tokens), the
//! tenant's tokens (revoke), and tenants (for the default tenant's administrators, who alone
//! may create them). Every form calls the API's own admin functions (`routes::admin::*`), so
//! who may do what, and every refusal, is the API's.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use serde::Deserialize;

use super::auth::encode;
use crate::identity::store::{TokenInfo, User};
use crate::identity::{password, ROLE_ADMIN, ROLE_PROCESS_MANAGER, ROLE_REQUESTER};
use crate::serve::app::App;
use crate::serve::error::ApiError;
use crate::serve::routes::admin as api;
use crate::serve::tenants::Backend;
use crate::serve::wire::identity::{NewUserRequest, TenantCreated, UserAttributesRequest};
use crate::web::csrf::{Fields, Posted};
use crate::web::layout::{self, Section, Viewer};
use crate::web::session::Signed;
use crate::web::WebResult;

type S<B> = State<Arc<App<B>>>;

#[derive(Deserialize, Default)]
pub struct DoneQuery {
    done: Option<String>,
}

fn viewer<St: itsmflow_engine::store::Store>(signed: &Signed<St>) -> Viewer<'_> {
    Viewer {
        who: &signed.ctx.who,
        csrf: &signed.session.csrf,
    }
}

fn send<St: itsmflow_engine::store::Store>(
    signed: &Signed<St>,
    status: StatusCode,
    title: &str,
    body: Markup,
) -> Response {
    layout::send(
        status,
        layout::page(title, Some(&viewer(signed)), Section::Admin, body),
    )
}

fn message(e: &ApiError) -> String {
    format!("{}: {}", e.title, e.detail)
}

/// Roles written as the form gives them: separated by commas or spaces.
fn roles_of(text: &str) -> Vec<String> {
    let mut roles: Vec<String> = text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect();
    roles.dedup();
    roles
}

/// The roles an administrator may choose from: the API's own and those the published
/// processes declare.
fn known_roles<St: itsmflow_engine::store::Store>(signed: &Signed<St>) -> Vec<String> {
    let mut roles: Vec<String> = [ROLE_ADMIN, ROLE_PROCESS_MANAGER, ROLE_REQUESTER]
        .iter()
        .map(|r| r.to_string())
        .collect();
    if let Some(d) = signed
        .ctx
        .tenant
        .engine
        .catalog()
        .definitions()
        .iter()
        .max_by_key(|d| d.published_at)
    {
        roles.extend(d.project.roles.iter().map(|r| r.name.clone()));
    }
    roles.sort();
    roles.dedup();
    roles
}

/// An optional text field: absent or blank is none.
fn optional(form: &Fields, name: &str) -> Option<String> {
    form.get(name)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

fn nav(current: &str) -> Markup {
    let link = |href: &str, text: &str| {
        html! { a href=(href) aria-current=[(href == current).then_some("page")] { (text) } }
    };
    html! {
        nav.subnav aria-label="Administration" {
            (link("/admin", "Users")) (link("/admin/tokens", "Tokens")) (link("/admin/tenants", "Tenants"))
        }
    }
}

fn manager_select(users: &[User], except: &str, current: Option<&str>, id: &str) -> Markup {
    html! {
        label for=(id) { "Manager" }
        select id=(id) name="manager" {
            option value="" { "None" }
            @for u in users.iter().filter(|u| u.name != except) {
                option value=(u.name) selected[current == Some(u.name.as_str())] { (u.name) }
            }
        }
    }
}

async fn users_page<B: Backend>(
    app: &App<B>,
    signed: &Signed<B::Store>,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
    form: Option<&Fields>,
) -> WebResult<Response> {
    let users = api::users_of(app, &signed.ctx).await?;
    let kept = |name: &str| form.and_then(|f| f.get(name)).unwrap_or_default();
    let known = known_roles(signed);
    let body = html! {
        h1 { "Administration" }
        (nav("/admin"))
        @if let Some(n) = notice { p.notice role="status" #admin-notice { (n) } }
        @if let Some(e) = error { p.error role="alert" #admin-error { (e) } }
        section.card aria-labelledby="h-users" {
            h2 #h-users { "Users" }
            table {
                thead { tr {
                    th scope="col" { "User" } th scope="col" { "Roles" } th scope="col" { "Manager" }
                    th scope="col" { "E-mail" } th scope="col" { "Since" }
                } }
                tbody {
                    @for u in &users {
                        tr {
                            td { a href=(format!("/admin/users/{}", encode(&u.name))) { (u.name) } }
                            td { (u.roles.join(", ")) }
                            td { (u.manager.as_deref().unwrap_or("—")) }
                            td { (u.email.as_deref().unwrap_or("—")) }
                            td { (u.created_at.format("%Y-%m-%d")) }
                        }
                    }
                }
            }
        }
        section.card aria-labelledby="h-new" {
            h2 #h-new { "New user" }
            form method="post" action="/admin/users" {
                input type="hidden" name="csrf" value=(signed.session.csrf);
                label for="new-name" { "User name" }
                input #new-name type="text" name="name" value=(kept("name")) required autocomplete="off";
                label for="new-roles" { "Roles" }
                input #new-roles type="text" name="roles" value=(kept("roles")) aria-describedby="new-roles-hint";
                p.hint #new-roles-hint { "Separated by spaces or commas. Known here: " (known.join(", ")) "." }
                (manager_select(&users, "", form.and_then(|f| f.get("manager")), "new-manager"))
                label for="new-email" { "E-mail (optional)" }
                input #new-email type="email" name="email" value=(kept("email")) autocomplete="off";
                label for="new-password" { "Password (optional)" }
                input #new-password type="password" name="password" autocomplete="new-password"
                    minlength=(password::MIN_LENGTH) aria-describedby="new-password-hint";
                p.hint #new-password-hint { "At least " (password::MIN_LENGTH) " characters; or set one later." }
                p { button type="submit" #create-user { "Create user" } }
            }
        }
    };
    Ok(send(signed, status, "Administration", body))
}

/// `GET /admin`: the tenant's users and a form for a new one.
pub async fn users<B: Backend>(
    State(app): S<B>,
    signed: Signed<B::Store>,
    Query(q): Query<DoneQuery>,
) -> WebResult<Response> {
    users_page(&app, &signed, StatusCode::OK, q.done.as_deref(), None, None).await
}

/// `POST /admin/users`: the API's create, then (if given) the API's password change.
pub async fn create_user<B: Backend>(
    State(app): S<B>,
    posted: Posted<B::Store>,
) -> WebResult<Response> {
    let Posted { signed, fields } = posted;
    let name = fields.get("name").unwrap_or_default().trim().to_string();
    let result = async {
        let body = NewUserRequest {
            name: name.clone(),
            roles: roles_of(fields.get("roles").unwrap_or_default()),
            manager: optional(&fields, "manager"),
            email: optional(&fields, "email"),
        };
        // A password that will be refused is refused before the user exists.
        let new_password = optional(&fields, "password");
        if let Some(p) = &new_password {
            password::acceptable(p).map_err(|e| ApiError::invalid(e.to_string()))?;
        }
        api::add_user(&app, &signed.ctx, body).await?;
        if let Some(p) = new_password {
            api::change_password(&app, &signed.ctx.who, &name, p, None, None).await?;
        }
        Ok::<_, ApiError>(())
    }
    .await;
    match result {
        Ok(()) => Ok(layout::see_other(&format!(
            "/admin/users/{}?done=created",
            encode(&name)
        ))),
        Err(e) => {
            users_page(
                &app,
                &signed,
                e.status,
                None,
                Some(&message(&e)),
                Some(&fields),
            )
            .await
        }
    }
}

async fn user_page<B: Backend>(
    app: &App<B>,
    signed: &Signed<B::Store>,
    name: &str,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
    secret: Option<&str>,
) -> WebResult<Response> {
    let users = api::users_of(app, &signed.ctx).await?;
    let Some(user) = users.iter().find(|u| u.name == name) else {
        return Err(ApiError::not_found(format!("no user `{name}`")).into());
    };
    let tokens: Vec<TokenInfo> = api::tokens_of(app, &signed.ctx)
        .await?
        .into_iter()
        .filter(|t| t.user == name)
        .collect();
    let csrf = &signed.session.csrf;
    let base = format!("/admin/users/{}", encode(name));
    let known = known_roles(signed);
    let others: Vec<&String> = user.roles.iter().filter(|r| !known.contains(r)).collect();
    let body = html! {
        p { a href="/admin" { "← Users" } }
        h1 { "User " (user.name) }
        @if let Some(n) = notice { p.notice role="status" #admin-notice { (n) } }
        @if let Some(e) = error { p.error role="alert" #admin-error { (e) } }
        @if let Some(secret) = secret {
            div.notice role="status" {
                p { strong { "The new token, shown this once:" } }
                p { code #token-secret { (secret) } }
                p.hint { "Copy it now: only its hash is kept." }
            }
        }
        div.grid {
            div {
                section.card aria-labelledby="h-roles" {
                    h2 #h-roles { "Roles" }
                    form method="post" action=(format!("{base}/roles")) {
                        input type="hidden" name="csrf" value=(csrf);
                        fieldset {
                            legend { "Roles of " (user.name) }
                            div.roles-grid { @for r in &known {
                                div.check {
                                    input type="checkbox" id=(format!("role-{r}")) name="role" value=(r)
                                        checked[user.roles.contains(r)];
                                    label for=(format!("role-{r}")) { (r) }
                                }
                            } }
                        }
                        label for="other-roles" { "Other roles" }
                        input #other-roles type="text" name="roles" value=(others.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(" "))
                            aria-describedby="other-roles-hint";
                        p.hint #other-roles-hint { "Roles no published process declares yet, separated by spaces." }
                        p { button type="submit" #save-roles { "Save roles" } }
                    }
                }
                section.card aria-labelledby="h-attrs" {
                    h2 #h-attrs { "Manager and e-mail" }
                    form method="post" action=(format!("{base}/attributes")) {
                        input type="hidden" name="csrf" value=(csrf);
                        (manager_select(&users, name, user.manager.as_deref(), "manager"))
                        label for="email" { "E-mail" }
                        input #email type="email" name="email" value=(user.email.as_deref().unwrap_or_default()) autocomplete="off";
                        p { button type="submit" { "Save" } }
                    }
                }
            }
            div {
                section.card aria-labelledby="h-password" {
                    h2 #h-password { "Password" }
                    p.hint { "Setting it ends the user's sessions; their API tokens stay." }
                    form method="post" action=(format!("{base}/password")) {
                        input type="hidden" name="csrf" value=(csrf);
                        label for="password" { "New password" }
                        input #password type="password" name="password" autocomplete="new-password"
                            minlength=(password::MIN_LENGTH) required;
                        label for="confirm" { "New password again" }
                        input #confirm type="password" name="confirm" autocomplete="new-password" required;
                        p { button type="submit" { "Set password" } }
                    }
                }
                section.card aria-labelledby="h-tokens" {
                    h2 #h-tokens { "API tokens" }
                    @if tokens.is_empty() { p.hint { "None." } }
                    ul { @for t in &tokens { li { (token_line(t)) } } }
                    form method="post" action=(format!("{base}/tokens")) {
                        input type="hidden" name="csrf" value=(csrf);
                        label for="token-label" { "Label (optional)" }
                        input #token-label type="text" name="label" autocomplete="off";
                        label for="token-days" { "Expires after (days, optional)" }
                        input #token-days type="number" name="days" min="1" max="3650" step="1";
                        p { button type="submit" #issue-token { "Issue a token" } }
                    }
                }
            }
        }
    };
    Ok(send(signed, status, &format!("User {name}"), body))
}

fn token_line(t: &TokenInfo) -> Markup {
    html! {
        "#" (t.id) " " (t.label.as_deref().unwrap_or("(no label)"))
        " · created " (t.created_at.format("%Y-%m-%d"))
        @if let Some(e) = t.expires_at { " · expires " (e.format("%Y-%m-%d")) }
        @if let Some(r) = t.revoked_at { " · " strong { "revoked " (r.format("%Y-%m-%d")) } }
    }
}

/// `GET /admin/users/{name}`.
pub async fn user<B: Backend>(
    State(app): S<B>,
    signed: Signed<B::Store>,
    Path(name): Path<String>,
    Query(q): Query<DoneQuery>,
) -> WebResult<Response> {
    let notice = q.done.as_deref().map(|d| match d {
        "created" => "The user is created.".to_string(),
        other => format!("Saved: {}.", other.replace('_', " ")),
    });
    user_page(
        &app,
        &signed,
        &name,
        StatusCode::OK,
        notice.as_deref(),
        None,
        None,
    )
    .await
}

/// After a user form: back to the user's page with a note, or the page with the API's
/// refusal.
async fn after_user<B: Backend>(
    app: &App<B>,
    signed: &Signed<B::Store>,
    name: &str,
    result: Result<&str, ApiError>,
) -> WebResult<Response> {
    match result {
        Ok(done) => Ok(layout::see_other(&format!(
            "/admin/users/{}?done={done}",
            encode(name)
        ))),
        // A user that does not exist (or no longer) is the page's 404.
        Err(e) if e.status == StatusCode::NOT_FOUND || e.status == StatusCode::FORBIDDEN => {
            Err(e.into())
        }
        Err(e) => user_page(app, signed, name, e.status, None, Some(&message(&e)), None).await,
    }
}

/// `POST /admin/users/{name}/roles`: the ticked roles and the others written out.
pub async fn roles<B: Backend>(
    State(app): S<B>,
    Path(name): Path<String>,
    posted: Posted<B::Store>,
) -> WebResult<Response> {
    let Posted { signed, fields } = posted;
    let mut roles: Vec<String> = fields
        .0
        .iter()
        .filter(|(k, _)| k == "role")
        .map(|(_, v)| v.clone())
        .collect();
    roles.extend(roles_of(fields.get("roles").unwrap_or_default()));
    roles.sort();
    roles.dedup();
    let result = api::change_roles(&app, &signed.ctx, &name, &roles)
        .await
        .map(|()| "roles");
    after_user(&app, &signed, &name, result).await
}

/// `POST /admin/users/{name}/attributes`: blank clears.
pub async fn attributes<B: Backend>(
    State(app): S<B>,
    Path(name): Path<String>,
    posted: Posted<B::Store>,
) -> WebResult<Response> {
    let Posted { signed, fields } = posted;
    let body = UserAttributesRequest {
        manager: Some(optional(&fields, "manager")),
        email: Some(optional(&fields, "email")),
    };
    let result = api::change_attributes(&app, &signed.ctx, &name, body)
        .await
        .map(|_| "manager_and_e-mail");
    after_user(&app, &signed, &name, result).await
}

/// `POST /admin/users/{name}/password`: the API's password change, as an administrator.
pub async fn set_password<B: Backend>(
    State(app): S<B>,
    Path(name): Path<String>,
    posted: Posted<B::Store>,
) -> WebResult<Response> {
    let Posted { signed, fields } = posted;
    let new = fields.get("password").unwrap_or_default().to_string();
    let result = if Some(new.as_str()) != fields.get("confirm") {
        Err(ApiError::invalid(
            "the two new passwords differ; nothing was changed",
        ))
    } else if name == signed.ctx.who.user {
        // One's own password needs the current one: that is the account page's form.
        Err(ApiError::invalid(
            "change your own password on the Account page, with your current one",
        ))
    } else {
        api::change_password(&app, &signed.ctx.who, &name, new, None, None)
            .await
            .map(|()| "password")
    };
    after_user(&app, &signed, &name, result).await
}

/// `POST /admin/users/{name}/tokens`: the secret is shown on the answer, once (not in a URL).
pub async fn issue_token<B: Backend>(
    State(app): S<B>,
    Path(name): Path<String>,
    posted: Posted<B::Store>,
) -> WebResult<Response> {
    let Posted { signed, fields } = posted;
    let days = match optional(&fields, "days").map(|d| d.parse::<i64>()) {
        None => None,
        Some(Ok(d)) => Some(d),
        Some(Err(_)) => {
            let e = ApiError::invalid("`expires_in_days` must be a whole number of days");
            return after_user(&app, &signed, &name, Err(e)).await;
        }
    };
    let label = optional(&fields, "label");
    match api::issue_token(&app, &signed.ctx, &name, label.as_deref(), days).await {
        Ok((_, secret)) => {
            user_page(
                &app,
                &signed,
                &name,
                StatusCode::CREATED,
                None,
                None,
                Some(&secret),
            )
            .await
        }
        Err(e) => after_user(&app, &signed, &name, Err(e)).await,
    }
}

async fn tokens_page<B: Backend>(
    app: &App<B>,
    signed: &Signed<B::Store>,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> WebResult<Response> {
    let tokens = api::tokens_of(app, &signed.ctx).await?;
    let body = html! {
        h1 { "Administration" }
        (nav("/admin/tokens"))
        @if let Some(n) = notice { p.notice role="status" #admin-notice { (n) } }
        @if let Some(e) = error { p.error role="alert" #admin-error { (e) } }
        section.card aria-labelledby="h-tokens" {
            h2 #h-tokens { "API tokens" }
            p.hint { "Tokens are issued on a user's page. A revoked token stops working at once." }
            table {
                thead { tr {
                    th.num scope="col" { "Token" } th scope="col" { "User" } th scope="col" { "Label" }
                    th scope="col" { "Created" } th scope="col" { "Expires" } th scope="col" { "State" }
                } }
                tbody {
                    @for t in &tokens {
                        tr data-token=(t.id) {
                            td.num { "#" (t.id) }
                            td { a href=(format!("/admin/users/{}", encode(&t.user))) { (t.user) } }
                            td { (t.label.as_deref().unwrap_or("—")) }
                            td { (t.created_at.format("%Y-%m-%d %H:%M")) }
                            td { (t.expires_at.map(|e| e.format("%Y-%m-%d").to_string()).unwrap_or("never".into())) }
                            td {
                                @if let Some(r) = t.revoked_at { "revoked " (r.format("%Y-%m-%d")) }
                                @else {
                                    form method="post" action=(format!("/admin/tokens/{}/revoke", t.id)) {
                                        input type="hidden" name="csrf" value=(signed.session.csrf);
                                        button.danger type="submit" aria-label=(format!("Revoke token {} of {}", t.id, t.user)) { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(send(signed, status, "API tokens", body))
}

/// `GET /admin/tokens`.
pub async fn tokens<B: Backend>(
    State(app): S<B>,
    signed: Signed<B::Store>,
    Query(q): Query<DoneQuery>,
) -> WebResult<Response> {
    let notice = q.done.map(|id| format!("Token #{id} is revoked."));
    tokens_page(&app, &signed, StatusCode::OK, notice.as_deref(), None).await
}

/// `POST /admin/tokens/{id}/revoke`.
pub async fn revoke<B: Backend>(
    State(app): S<B>,
    Path(id): Path<i64>,
    posted: Posted<B::Store>,
) -> WebResult<Response> {
    let signed = posted.signed;
    match api::revoke(&app, &signed.ctx, id).await {
        Ok(()) => Ok(layout::see_other(&format!("/admin/tokens?done={id}"))),
        Err(e) if e.status == StatusCode::FORBIDDEN => Err(e.into()),
        Err(e) => tokens_page(&app, &signed, e.status, None, Some(&message(&e))).await,
    }
}

async fn tenants_page<B: Backend>(
    app: &App<B>,
    signed: &Signed<B::Store>,
    status: StatusCode,
    created: Option<&TenantCreated>,
    error: Option<&str>,
) -> WebResult<Response> {
    // Only the default tenant's administrators may see and create tenants; another tenant's
    // administrator is told so (the API's refusal), not shown an error page.
    let names = api::tenant_names(app, &signed.ctx).await;
    let body = html! {
        h1 { "Administration" }
        (nav("/admin/tenants"))
        @if let Some(e) = error { p.error role="alert" #admin-error { (e) } }
        @if let Some(c) = created {
            div.notice role="status" {
                p { "Tenant " strong { (c.tenant) } " is created, with the standard processes. "
                    "Its administrator " (c.admin) "'s token, shown this once:" }
                p { code #tenant-secret { (c.secret) } }
            }
        }
        section.card aria-labelledby="h-tenants" {
            h2 #h-tenants { "Tenants" }
            @match &names {
                Err(e) => { p.hint { (e.detail) "." } }
                Ok(names) => {
                    ul #tenants { @for n in names { li { code { (n) } } } }
                    h3 { "New tenant" }
                    form method="post" action="/admin/tenants" {
                        input type="hidden" name="csrf" value=(signed.session.csrf);
                        label for="tenant-name" { "Name" }
                        input #tenant-name type="text" name="name" required autocomplete="off" aria-describedby="tenant-name-hint";
                        p.hint #tenant-name-hint { "Lowercase letters, digits and _, starting with a letter." }
                        label for="tenant-admin" { "Its first administrator" }
                        input #tenant-admin type="text" name="admin" required autocomplete="off";
                        p { button type="submit" #create-tenant { "Create tenant" } }
                    }
                }
            }
        }
    };
    Ok(send(signed, status, "Tenants", body))
}

/// `GET /admin/tenants`.
pub async fn tenants<B: Backend>(
    State(app): S<B>,
    signed: Signed<B::Store>,
) -> WebResult<Response> {
    signed.ctx.require_admin()?;
    tenants_page(&app, &signed, StatusCode::OK, None, None).await
}

/// `POST /admin/tenants`: the API's create; the new administrator's token is on the answer.
pub async fn create_tenant<B: Backend>(
    State(app): S<B>,
    posted: Posted<B::Store>,
) -> WebResult<Response> {
    let Posted { signed, fields } = posted;
    let name = fields.get("name").unwrap_or_default().trim();
    let admin = fields.get("admin").unwrap_or_default().trim();
    match api::add_tenant(&app, &signed.ctx, name, admin).await {
        Ok(created) => tenants_page(&app, &signed, StatusCode::CREATED, Some(&created), None).await,
        Err(e) if e.status == StatusCode::FORBIDDEN => Err(e.into()),
        Err(e) => tenants_page(&app, &signed, e.status, None, Some(&message(&e))).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_split_on_commas_and_spaces() {
        assert_eq!(
            roles_of("agent, team_lead  x"),
            vec!["agent", "team_lead", "x"]
        );
        assert!(roles_of(" , ").is_empty());
    }
}
