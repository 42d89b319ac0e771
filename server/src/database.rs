//! Where the server keeps its data: an SQLite file (the default) or a PostgreSQL database.

use std::path::{Path, PathBuf};

/// A `--database-url`: `postgres://…`/`postgresql://…`, or an SQLite file given as
/// `sqlite://PATH`, `sqlite:PATH` or a plain path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Database {
    Sqlite(PathBuf),
    Postgres(String),
}

/// Tenant names become file names and schema names, so they are kept to a safe alphabet.
pub fn valid_tenant_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The tenant that exists from the first start; its data lives in the main database.
pub const DEFAULT_TENANT: &str = "default";

impl Database {
    pub fn parse(url: &str) -> Self {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Database::Postgres(url.to_string());
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        Database::Sqlite(PathBuf::from(path))
    }

    /// The SQLite file of a tenant: the main file for the default tenant, `NAME.TENANT.db`
    /// beside it for the others (one file per tenant: nothing is shared between tenants).
    pub fn sqlite_file(main: &Path, tenant: &str) -> PathBuf {
        if tenant == DEFAULT_TENANT {
            return main.to_path_buf();
        }
        let stem = main
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "itsmflow".into());
        main.with_file_name(format!("{stem}.{tenant}.db"))
    }

    /// The PostgreSQL schema of a tenant (`public` for the default tenant).
    pub fn postgres_schema(tenant: &str) -> String {
        if tenant == DEFAULT_TENANT {
            "public".into()
        } else {
            format!("tenant_{tenant}")
        }
    }

    /// The URL of a tenant's schema: the same database, with its `search_path`.
    pub fn postgres_url(url: &str, tenant: &str) -> String {
        if tenant == DEFAULT_TENANT {
            return url.to_string();
        }
        let sep = if url.contains('?') { '&' } else { '?' };
        format!(
            "{url}{sep}options=-c%20search_path%3D{}",
            Self::postgres_schema(tenant)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            Database::parse("sqlite://./a.db"),
            Database::Sqlite("./a.db".into())
        );
        assert_eq!(Database::parse("a.db"), Database::Sqlite("a.db".into()));
        assert!(matches!(
            Database::parse("postgres:///x?host=/tmp"),
            Database::Postgres(_)
        ));
        assert_eq!(
            Database::sqlite_file(Path::new("/d/itsmflow.db"), "acme"),
            PathBuf::from("/d/itsmflow.acme.db")
        );
        assert_eq!(
            Database::postgres_url("postgres:///x?host=/tmp", "acme"),
            "postgres:///x?host=/tmp&options=-c%20search_path%3Dtenant_acme"
        );
        assert!(valid_tenant_name("acme_2"));
        assert!(!valid_tenant_name("Acme"));
        assert!(!valid_tenant_name("../x"));
        assert!(!valid_tenant_name(""));
    }
}
