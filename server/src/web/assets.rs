//! The pages' static files, compiled into the binary (`include_bytes!`): nothing to install or
//! deploy beside it. Each is served under a name carrying a hash of its content
//! (`/assets/style.3f2a….css`), so browsers may keep it for a year without asking again
//! (`immutable`) and a new build's pages name new files.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

struct Asset {
    /// The name as written in the source tree (`style.css`).
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const FILES: &[Asset] = &[
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("assets/style.css"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("assets/app.js"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("assets/favicon.svg"),
    },
];

/// Each file's served name, `stem.HASH.ext`, worked out once.
fn served() -> &'static [(String, &'static Asset)] {
    static SERVED: OnceLock<Vec<(String, &'static Asset)>> = OnceLock::new();
    SERVED.get_or_init(|| {
        FILES
            .iter()
            .map(|a| {
                let digest = Sha256::digest(a.bytes);
                let hash: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
                let (stem, ext) = a.name.rsplit_once('.').unwrap_or((a.name, ""));
                (format!("{stem}.{hash}.{ext}"), a)
            })
            .collect()
    })
}

/// The URL of a file by its source name (`style.css` → `/assets/style.3f2a….css`).
pub fn url(name: &str) -> String {
    served()
        .iter()
        .find(|(_, a)| a.name == name)
        .map(|(served, _)| format!("/assets/{served}"))
        .unwrap_or_else(|| format!("/assets/{name}"))
}

/// `GET /assets/{file}`.
pub async fn get(Path(file): Path<String>) -> Response {
    let Some((_, asset)) = served().iter().find(|(served, _)| *served == file) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        asset.bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_content_hash() {
        let u = url("style.css");
        assert!(
            u.starts_with("/assets/style.") && u.ends_with(".css"),
            "{u}"
        );
        assert_eq!(u.len(), "/assets/style.".len() + 12 + ".css".len());
        assert_ne!(url("app.js"), "/assets/app.js");
    }
}
