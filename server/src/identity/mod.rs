//! Who is calling: tenants, users with roles, and the bearer tokens they authenticate with (or,
//! on the web pages, their password and a session).
//!
//! A token belongs to one user of one tenant; everything a request does happens inside that
//! tenant. Tokens are random 256-bit secrets shown once; only their SHA-256 is stored.
//! Passwords are stored as Argon2id hashes ([`password`]), sessions by the SHA-256 of their
//! cookie's secret.
//!
//! Roles do two jobs. Three are the API's own:
//! - `admin`: manages users and tokens, publishes definitions, does everything an agent does;
//! - `process_manager`: publishes definitions;
//! - `requester`: raises tickets and sees only their own.
//!
//! Every other role is a process role (`agent`, `team_lead`, `change_manager`, …): the engine
//! checks it against the definitions (who may perform an action, who works a queue). A user
//! holding any role other than `requester` works the tenant's tickets and queues.

pub mod directory;
pub mod password;
pub mod store;

use sha2::{Digest, Sha256};

pub const ROLE_ADMIN: &str = "admin";
pub const ROLE_PROCESS_MANAGER: &str = "process_manager";
pub const ROLE_REQUESTER: &str = "requester";

/// The authenticated caller of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub tenant: String,
    pub user: String,
    pub roles: Vec<String>,
    /// The bearer token presented; 0 for a web page's session, which has no token.
    pub token_id: i64,
}

impl Principal {
    pub fn has(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    pub fn is_admin(&self) -> bool {
        self.has(ROLE_ADMIN)
    }

    pub fn may_publish(&self) -> bool {
        self.is_admin() || self.has(ROLE_PROCESS_MANAGER)
    }

    /// Requesters see only the tickets they raised, and no queues.
    pub fn is_requester_only(&self) -> bool {
        self.roles.iter().all(|r| r == ROLE_REQUESTER)
    }
}

/// User names appear in histories and queues; keep them printable and bounded.
pub fn valid_user_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
}

pub fn valid_role_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Prefix of every token, so a leaked one is recognisable (and scannable) as ours.
const TOKEN_PREFIX: &str = "itsm_";

/// A new random token.
pub fn new_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    let mut token = String::with_capacity(TOKEN_PREFIX.len() + 64);
    token.push_str(TOKEN_PREFIX);
    for b in bytes {
        token.push_str(&format!("{b:02x}"));
    }
    Ok(token)
}

/// What is stored of a token. The secret has 256 bits of entropy, so a plain hash suffices
/// (no salt or stretching: there is nothing to brute-force).
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("itsm_") && a.len() == 69);
        assert_eq!(token_hash(&a), token_hash(&a));
        assert_ne!(token_hash(&a), token_hash(&b));
        assert_eq!(token_hash(&a).len(), 64);
    }

    #[test]
    fn requesters() {
        let p = |roles: &[&str]| Principal {
            tenant: "t".into(),
            user: "u".into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            token_id: 1,
        };
        assert!(p(&["requester"]).is_requester_only());
        assert!(!p(&["requester", "agent"]).is_requester_only());
        assert!(p(&["process_manager"]).may_publish());
        assert!(!p(&["agent"]).may_publish());
    }
}
