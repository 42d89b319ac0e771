-- A tenant's tailoring of the standard processes: the client's files (a JSON array of
-- {name, text}), applied over the standard library whenever it is published to the tenant.
CREATE TABLE auth_tailorings (
    tenant TEXT PRIMARY KEY REFERENCES auth_tenants (name),
    files TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL
);
