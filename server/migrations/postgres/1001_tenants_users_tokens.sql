-- Tenants, their users (roles as a JSON array) and API tokens, by the SHA-256 of the secret
-- (a copy of the table gives no live token). Identity steps are versions 1001 to 1999: the
-- engine's own steps share _sqlx_migrations below 1000.
CREATE TABLE auth_tenants (name TEXT PRIMARY KEY, created_at BIGINT NOT NULL);
CREATE TABLE auth_users (
    tenant TEXT NOT NULL REFERENCES auth_tenants (name),
    name TEXT NOT NULL,
    roles TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, name)
);
CREATE TABLE auth_tokens (
    id BIGSERIAL PRIMARY KEY,
    tenant TEXT NOT NULL,
    user_name TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    label TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT,
    FOREIGN KEY (tenant, user_name) REFERENCES auth_users (tenant, name)
);
