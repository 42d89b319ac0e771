//! Passwords for signing in to the web pages, stored as Argon2id hashes (PHC strings with their
//! salt and parameters, so the parameters can be raised later without breaking stored hashes).
//!
//! Argon2id is memory-hard: each guess costs an attacker who stole the table the same 19 MiB
//! and two passes it costs us, which defeats GPU farms far better than a fast hash would.
//! Hashing takes tens of milliseconds, so callers run it off the async threads
//! ([`hash_blocking`], [`verify_blocking`]).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("{0}")]
    Weak(&'static str),
    #[error("no source of randomness: {0}")]
    Random(getrandom::Error),
    #[error("cannot hash the password: {0}")]
    Hash(argon2::password_hash::Error),
    #[error("the hashing task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Shortest password accepted. Length matters more than character classes (NIST SP 800-63B).
pub const MIN_LENGTH: usize = 10;
/// Longest password accepted, in bytes: long enough for any passphrase, short enough that
/// nobody makes the server hash megabytes.
pub const MAX_BYTES: usize = 1024;

/// Whether a password may be set: long enough, not absurdly long, no NUL character.
pub fn acceptable(password: &str) -> Result<(), PasswordError> {
    if password.chars().count() < MIN_LENGTH {
        return Err(PasswordError::Weak(
            "the password must be at least 10 characters long",
        ));
    }
    if password.len() > MAX_BYTES {
        return Err(PasswordError::Weak(
            "the password must be at most 1024 bytes long",
        ));
    }
    if password.contains('\0') {
        return Err(PasswordError::Weak(
            "the password may not contain a NUL character",
        ));
    }
    Ok(())
}

/// The Argon2id hash of a password with a fresh random salt, as a PHC string
/// (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`: OWASP's recommended parameters).
pub fn hash(password: &str) -> Result<String, PasswordError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(PasswordError::Random)?;
    let salt = SaltString::encode_b64(&salt).map_err(PasswordError::Hash)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(PasswordError::Hash)
}

/// Whether `password` matches a stored PHC string. A stored value that is not a hash we can
/// read matches nothing.
pub fn verify(password: &str, stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// A hash of a password nobody has, verified against when a user has no password (or does not
/// exist), so that the time a failed sign-in takes does not tell which users exist.
fn decoy() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash("not a password anyone has").unwrap_or_default())
}

pub async fn hash_blocking(password: String) -> Result<String, PasswordError> {
    tokio::task::spawn_blocking(move || hash(&password)).await?
}

/// Verify off the async threads; `stored` `None` spends the same time and fails.
pub async fn verify_blocking(
    password: String,
    stored: Option<String>,
) -> Result<bool, PasswordError> {
    Ok(tokio::task::spawn_blocking(move || match stored {
        Some(s) => verify(&password, &s),
        None => {
            verify(&password, decoy());
            false
        }
    })
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_are_salted() {
        let a = hash("correct horse battery").unwrap();
        let b = hash("correct horse battery").unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "every hash has its own salt");
        assert!(verify("correct horse battery", &a));
        assert!(verify("correct horse battery", &b));
        assert!(!verify("correct horse batterY", &a));
        assert!(!verify("", &a));
        assert!(!verify("correct horse battery", "not a hash"));
        assert!(!verify("correct horse battery", ""));
    }

    #[test]
    fn weak_passwords_are_refused() {
        assert!(acceptable("short").is_err());
        assert!(acceptable("ninechars").is_err());
        assert!(acceptable("tencharsok").is_ok());
        assert!(acceptable(&"x".repeat(MAX_BYTES + 1)).is_err());
        assert!(acceptable("has a \0 nul inside").is_err());
        // Characters, not bytes: ten accented letters are ten.
        assert!(acceptable("éééééééééé").is_ok());
    }

    #[tokio::test]
    async fn unknown_users_fail_in_the_same_way() {
        assert!(!verify_blocking("whatever it is".into(), None)
            .await
            .unwrap());
        let h = hash_blocking("a good long password".into()).await.unwrap();
        assert!(verify_blocking("a good long password".into(), Some(h))
            .await
            .unwrap());
    }
}
