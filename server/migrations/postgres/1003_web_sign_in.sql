-- Signing in to the web pages: a user's password as an Argon2id PHC string (none: they
-- cannot sign in with a password).
ALTER TABLE auth_users ADD COLUMN password_hash TEXT;
-- Web sessions, by the SHA-256 of the cookie's secret (like tokens: a copy of the table gives
-- no live session), with the CSRF token of their forms.
CREATE TABLE auth_sessions (
    id_hash TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    user_name TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    FOREIGN KEY (tenant, user_name) REFERENCES auth_users (tenant, name)
);
CREATE INDEX auth_sessions_user ON auth_sessions (tenant, user_name);
CREATE INDEX auth_sessions_expiry ON auth_sessions (expires_at);
-- One-time links to set a password (the first administrator's at first start), by the
-- SHA-256 of their secret.
CREATE TABLE auth_setup_links (
    id_hash TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    user_name TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    FOREIGN KEY (tenant, user_name) REFERENCES auth_users (tenant, name)
);
