//! CSRF protection: every form a signed-in page shows carries the session's synchroniser token
//! in a hidden `csrf` field, and every POST is read through [`Posted`], which refuses (403,
//! before anything else runs) a body whose token is missing or not the session's. Another
//! site can make a browser send our cookie (a form posted across sites, under `SameSite=Lax`
//! only a top-level one), but it cannot read a page of ours to learn the token.
//!
//! The sign-in form has no session yet; it is protected the same way by a token in a
//! short-lived cookie of its own (`SameSite=Strict`) that the form must repeat, so another site
//! cannot sign a browser in to an account of its choosing.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};

use super::session::Signed;
use super::WebError;
use crate::serve::app::App;
use crate::serve::tenants::Backend;

/// The form field that carries the token.
pub const FIELD: &str = "csrf";

/// Equality that takes the same time wherever the strings differ, so the token cannot be
/// guessed a character at a time by timing refusals.
pub fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A form's fields, in order (a name may repeat).
#[derive(Debug, Default)]
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    pub fn parse(body: &[u8]) -> Result<Self, WebError> {
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
            .map(Fields)
            .map_err(|_| WebError::BadForm("the form could not be read".into()))
    }

    /// The first value of a field.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a field, in order: a multiple select sends one per chosen option.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// A form posted by a signed-in user whose CSRF token was checked.
pub struct Posted<S: itsmflow_engine::store::Store> {
    pub signed: Signed<S>,
    pub fields: Fields,
}

impl<B: Backend> FromRequest<Arc<App<B>>> for Posted<B::Store> {
    type Rejection = WebError;

    async fn from_request(req: Request, app: &Arc<App<B>>) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let signed = Signed::<B::Store>::from_request_parts(&mut parts, app).await?;
        let req = Request::from_parts(parts, body);
        let bytes = Bytes::from_request(req, app)
            .await
            .map_err(|_| WebError::BadForm("the form is too large".into()))?;
        let fields = Fields::parse(&bytes)?;
        let sent = fields.get(FIELD).unwrap_or_default();
        if !same(sent, &signed.session.csrf) {
            tracing::warn!("form refused: CSRF token missing or wrong");
            return Err(WebError::Forbidden(
                "this form is out of date or did not come from this site (its security token \
                 is missing or wrong); nothing was changed. Reload the page and try again"
                    .into(),
            ));
        }
        Ok(Posted { signed, fields })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
        assert!(!same("", "abc"));
        assert!(same("", ""));
    }

    #[test]
    fn forms_are_read_in_order() {
        let f = Fields::parse(b"csrf=x%20y&resolution=Fixed+it&a=1&a=2").unwrap();
        assert_eq!(f.get("csrf"), Some("x y"));
        assert_eq!(f.get("resolution"), Some("Fixed it"));
        assert_eq!(f.get("a"), Some("1"));
        assert_eq!(f.get("b"), None);
    }
}
