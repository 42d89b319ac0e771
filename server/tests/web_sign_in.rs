//! Signing in to the web pages over a real socket, on SQLite and PostgreSQL: passwords set
//! through the API and the first-start setup link, the session cookie's flags, signing out,
//! CSRF refusals that change nothing, and failed sign-ins slowed down.

#[macro_use]
mod support;

use reqwest::{Method, StatusCode};
use serde_json::json;
use support::web::WebClient;
use support::{Db, Server};

on_both!(
    first_start_setup_link,
    passwords_through_the_api,
    sessions_and_their_cookie,
    forms_without_their_token_change_nothing,
    failed_sign_ins_are_slowed,
);

const PASSWORD: &str = "correct horse battery";

async fn set_password(s: &Server, token: &str, user: &str, body: serde_json::Value) -> StatusCode {
    let (st, b) = s
        .call(
            Method::PUT,
            &format!("/v1/users/{user}/password"),
            token,
            Some(body),
        )
        .await;
    assert!(st.is_success() || st.is_client_error(), "{st} {b}");
    st
}

/// The link printed at first start sets the administrator's password, once; the next start
/// prints none.
async fn first_start_setup_link(db: Db) {
    let s = Server::start(&db);
    let path = s
        .setup_link
        .split_once(&s.base)
        .map(|(_, p)| p.to_string())
        .expect("a setup link on this server");
    let mut c = WebClient::new(&s.base);
    let form = c.get(&path).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(
        form.body.contains("<strong>admin</strong>"),
        "{}",
        form.body
    );
    // Too short, or not repeated alike: refused, the link still works.
    let short = c
        .post(&path, &[("password", "short"), ("confirm", "short")])
        .await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    let differ = c
        .post(
            &path,
            &[("password", PASSWORD), ("confirm", "something else")],
        )
        .await;
    assert_eq!(differ.status, StatusCode::UNPROCESSABLE_ENTITY);
    let done = c
        .post(&path, &[("password", PASSWORD), ("confirm", PASSWORD)])
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(done.location(), Some("/sign-in?done=1"));
    // Spent.
    assert_eq!(c.get(&path).await.status, StatusCode::NOT_FOUND);
    let again = c
        .post(
            &path,
            &[
                ("password", "another long one"),
                ("confirm", "another long one"),
            ],
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    WebClient::signed_in(&s.base, "default", "admin", PASSWORD).await;
    let s2 = {
        s.stop();
        Server::start(&db)
    };
    assert!(
        s2.setup_link.is_empty(),
        "an administrator has a password now"
    );
}

async fn passwords_through_the_api(db: Db) {
    let s = Server::start(&db);
    let alice = s.user(&s.admin, "alice", &["agent"]).await;
    s.user(&s.admin, "bob", &["agent"]).await;
    // Weak passwords, unknown users.
    assert_eq!(
        set_password(&s, &s.admin, "alice", json!({"password": "short"})).await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        set_password(&s, &s.admin, "nobody", json!({"password": PASSWORD})).await,
        StatusCode::NOT_FOUND
    );
    // An agent cannot set another's.
    assert_eq!(
        set_password(&s, &alice, "bob", json!({"password": PASSWORD})).await,
        StatusCode::FORBIDDEN
    );
    // Users without a password set their first one; after that they need the old one.
    assert_eq!(
        set_password(&s, &alice, "alice", json!({"password": PASSWORD})).await,
        StatusCode::NO_CONTENT
    );
    let mut web = WebClient::signed_in(&s.base, "default", "alice", PASSWORD).await;
    assert_eq!(
        set_password(
            &s,
            &alice,
            "alice",
            json!({"password": "a new long password"})
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        set_password(
            &s,
            &alice,
            "alice",
            json!({"password": "a new long password", "old_password": "wrong guess!"})
        )
        .await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        set_password(
            &s,
            &alice,
            "alice",
            json!({"password": "a new long password", "old_password": PASSWORD})
        )
        .await,
        StatusCode::NO_CONTENT
    );
    // Her session ended with the change; the old password no longer works, the new one does.
    let page = web.get("/account").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(page.location().unwrap().starts_with("/sign-in"));
    let mut c = WebClient::new(&s.base);
    assert_eq!(
        c.sign_in_as("default", "alice", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    WebClient::signed_in(&s.base, "default", "alice", "a new long password").await;
    // Bearer tokens are untouched by all this.
    assert_eq!(s.get("/v1/me", &alice).await.0, StatusCode::OK);
    // The page does the same, through the same checks: an agent may not set bob's.
    let mut web = WebClient::signed_in(&s.base, "default", "alice", "a new long password").await;
    let account = web.get("/account").await;
    let token = account.csrf();
    let refused = web
        .post(
            "/account/password",
            &[
                ("csrf", &token),
                ("user", "bob"),
                ("password", "bobs new password"),
                ("confirm", "bobs new password"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(refused.body.contains("needs the `admin` role"));
}

async fn sessions_and_their_cookie(db: Db) {
    let s = Server::start(&db);
    s.user(&s.admin, "alice", &["agent"]).await;
    set_password(&s, &s.admin, "alice", json!({"password": PASSWORD})).await;

    // Pages need a session: the browser is sent to sign in, and back afterwards.
    let mut c = WebClient::new(&s.base);
    let page = c.get("/account").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), Some("/sign-in?next=/account"));

    let form = c.get("/sign-in?next=/account").await;
    let token = form.csrf();
    assert!(form.body.contains("name=\"next\" value=\"/account\""));
    let wrong = c
        .post(
            "/sign-in",
            &[
                ("csrf", &token),
                ("user", "alice"),
                ("password", "not it at all"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("The user name or password is wrong."));
    assert!(!c.cookies.contains_key("itsmflow_session"));
    let ok = c
        .post(
            "/sign-in",
            &[
                ("csrf", &token),
                ("user", "alice"),
                ("password", PASSWORD),
                ("next", "/account"),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(ok.location(), Some("/account"));
    let cookie = ok
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("itsmflow_session="))
        .expect("a session cookie");
    assert!(cookie.contains("; HttpOnly"), "{cookie}");
    assert!(cookie.contains("; SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("; Path=/"), "{cookie}");
    assert!(cookie.contains("; Max-Age=43200"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    let page = c.get("/account").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<dd>alice</dd>"));
    assert_eq!(
        page.headers.get("cache-control").unwrap(),
        "no-store",
        "pages are private"
    );
    assert!(page
        .headers
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));

    // Behind a TLS proxy the cookie is Secure; `next` never leads off the site.
    let mut tls = WebClient::new(&s.base);
    tls.headers
        .push(("x-forwarded-proto".into(), "https".into()));
    let form = tls.get("/sign-in").await;
    let token = form.csrf();
    let ok = tls
        .post(
            "/sign-in",
            &[
                ("csrf", &token),
                ("user", "alice"),
                ("password", PASSWORD),
                ("next", "//elsewhere.example/"),
            ],
        )
        .await;
    assert_eq!(ok.location(), Some("/"));
    assert!(ok
        .set_cookies()
        .iter()
        .any(|c| c.starts_with("itsmflow_session=") && c.ends_with("; Secure")));

    // Signing out ends the session on the server, not only in the browser.
    let secret = c.cookies["itsmflow_session"].clone();
    let token = page.csrf();
    let out = c.post("/sign-out", &[("csrf", &token)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(!c.cookies.contains_key("itsmflow_session"));
    c.cookies.insert("itsmflow_session".into(), secret);
    assert_eq!(c.get("/account").await.status, StatusCode::SEE_OTHER);

    // A made-up cookie is no session.
    let mut forged = WebClient::new(&s.base);
    forged
        .cookies
        .insert("itsmflow_session".into(), "itsm_forged".into());
    assert_eq!(forged.get("/account").await.status, StatusCode::SEE_OTHER);
    // Assets are public and cached for good.
    let mut anon = WebClient::new(&s.base);
    let sign_in = anon.get("/sign-in").await;
    let css = sign_in
        .body
        .split("href=\"")
        .find_map(|p| p.split('"').next().filter(|u| u.ends_with(".css")))
        .expect("a stylesheet")
        .to_string();
    let sheet = anon.get(&css).await;
    assert_eq!(sheet.status, StatusCode::OK);
    assert_eq!(
        sheet.headers.get("content-type").unwrap(),
        "text/css; charset=utf-8"
    );
    assert!(sheet
        .headers
        .get("cache-control")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("immutable"));
}

/// A form posted without its token, or with another session's, is refused with 403 before
/// anything happens.
async fn forms_without_their_token_change_nothing(db: Db) {
    let s = Server::start(&db);
    s.user(&s.admin, "alice", &["agent"]).await;
    s.user(&s.admin, "bob", &["agent"]).await;
    set_password(&s, &s.admin, "alice", json!({"password": PASSWORD})).await;
    set_password(
        &s,
        &s.admin,
        "bob",
        json!({"password": "bobs own password"}),
    )
    .await;
    let mut alice = WebClient::signed_in(&s.base, "default", "alice", PASSWORD).await;
    let mut bob = WebClient::signed_in(&s.base, "default", "bob", "bobs own password").await;
    let bobs_token = bob.get("/account").await.csrf();

    let change = [
        ("user", "alice"),
        ("old_password", PASSWORD),
        ("password", "changed by a forged form"),
        ("confirm", "changed by a forged form"),
    ];
    let none = alice.post("/account/password", &change).await;
    assert_eq!(none.status, StatusCode::FORBIDDEN);
    let mut with_bobs = change.to_vec();
    with_bobs.push(("csrf", &bobs_token));
    let other = alice.post("/account/password", &with_bobs).await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    // Nothing changed: the old password still signs in, alice's session is still open.
    WebClient::signed_in(&s.base, "default", "alice", PASSWORD).await;
    assert_eq!(alice.get("/account").await.status, StatusCode::OK);
    // Signing out needs it too.
    assert_eq!(
        alice.post("/sign-out", &[]).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(alice.get("/account").await.status, StatusCode::OK);
    // And the sign-in form: without the token its cookie holds, nobody is signed in.
    let mut c = WebClient::new(&s.base);
    c.get("/sign-in").await;
    let forged = c
        .post(
            "/sign-in",
            &[
                ("csrf", "itsm_guess"),
                ("user", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(!c.cookies.contains_key("itsmflow_session"));
}

/// After five failures for a user, attempts are refused for a doubling wait, even with the
/// right password; other users are not held up; the wait passes.
async fn failed_sign_ins_are_slowed(db: Db) {
    let s = Server::start(&db);
    s.user(&s.admin, "alice", &["agent"]).await;
    s.user(&s.admin, "bob", &["agent"]).await;
    set_password(&s, &s.admin, "alice", json!({"password": PASSWORD})).await;
    set_password(&s, &s.admin, "bob", json!({"password": PASSWORD})).await;
    let mut c = WebClient::new(&s.base);
    for i in 0..5 {
        let wrong = c
            .sign_in_as("default", "alice", &format!("guess number {i}"))
            .await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let held = c.sign_in_as("default", "alice", PASSWORD).await;
    assert_eq!(held.status, StatusCode::TOO_MANY_REQUESTS, "{}", held.body);
    assert_eq!(held.headers.get("retry-after").unwrap(), "1");
    assert!(held.body.contains("Too many failed sign-ins"));
    assert!(!c.cookies.contains_key("itsmflow_session"));
    WebClient::signed_in(&s.base, "default", "bob", PASSWORD).await;
    // After the wait, one more failure doubles it.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let wrong = c.sign_in_as("default", "alice", "guess number 6").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let held = c.sign_in_as("default", "alice", PASSWORD).await;
    assert_eq!(held.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(held.headers.get("retry-after").unwrap(), "2");
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    WebClient::signed_in(&s.base, "default", "alice", PASSWORD).await;
}
