//! The engine's [`Directory`] for one tenant: approvers are the tenant's users holding a role,
//! read from the identity store when an approval level opens (never cached, so a level opens
//! with the holders of that moment).

use itsmflow_engine::runtime::approval::DirectoryAnswer as Answer;
use itsmflow_engine::runtime::{Directory, EngineError};
use itsmflow_engine::store::StoreError;

use super::store::{IdentityError, IdentityStore};

pub struct TenantDirectory {
    identities: IdentityStore,
    tenant: String,
    /// Users found to exist. Users are never removed (their roles, attributes and tokens
    /// change, not their existence), so a name once found needs no second read: raising a
    /// ticket with a person field then costs no query.
    known: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// Names kept at most; when full the set starts over (a name not found only costs a read).
const KNOWN_USERS: usize = 65_536;

impl TenantDirectory {
    pub fn new(identities: IdentityStore, tenant: &str) -> Self {
        TenantDirectory {
            identities,
            tenant: tenant.to_string(),
            known: Default::default(),
        }
    }

    fn known(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn engine_error(e: IdentityError) -> EngineError {
    match e {
        IdentityError::Database(e) => EngineError::Store(StoreError::Database(e)),
        other => EngineError::Store(StoreError::Corrupt(other.to_string())),
    }
}

impl Directory for TenantDirectory {
    fn holders<'a>(&'a self, roles: &'a [&'a str]) -> Answer<'a, Vec<Vec<String>>> {
        Box::pin(async move {
            let users = self
                .identities
                .users(&self.tenant)
                .await
                .map_err(engine_error)?;
            Ok(roles
                .iter()
                .map(|role| {
                    users
                        .iter()
                        .filter(|u| u.roles.iter().any(|r| r == role))
                        .map(|u| u.name.clone())
                        .collect()
                })
                .collect())
        })
    }

    fn managers<'a>(&'a self, users: &'a [&'a str]) -> Answer<'a, Vec<Option<String>>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(users.len());
            for u in users {
                let found = self
                    .identities
                    .user(&self.tenant, u)
                    .await
                    .map_err(engine_error)?;
                out.push(found.and_then(|u| u.manager));
            }
            Ok(out)
        })
    }

    fn exists<'a>(&'a self, user: &'a str) -> Answer<'a, bool> {
        Box::pin(async move {
            if self.known().contains(user) {
                return Ok(true);
            }
            let found = self
                .identities
                .user(&self.tenant, user)
                .await
                .map_err(engine_error)?
                .is_some();
            if found {
                let mut known = self.known();
                if known.len() >= KNOWN_USERS {
                    known.clear();
                }
                known.insert(user.to_string());
            }
            Ok(found)
        })
    }
}
