-- Agents' saved queue filters (the web pages): a name, the queue and the filter's query
-- string, per user and tenant.
CREATE TABLE auth_saved_filters (
    tenant TEXT NOT NULL,
    user_name TEXT NOT NULL,
    queue TEXT NOT NULL,
    name TEXT NOT NULL,
    query TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, user_name, queue, name),
    FOREIGN KEY (tenant, user_name) REFERENCES auth_users (tenant, name)
);
