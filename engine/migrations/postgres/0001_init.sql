-- itsmflow schema, PostgreSQL. Migrations are append-only: never edit a released one.

CREATE TABLE projects (
    hash        TEXT PRIMARY KEY,
    source      JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE definitions (
    id           BIGSERIAL PRIMARY KEY,
    process      TEXT NOT NULL,
    version      INTEGER NOT NULL,
    hash         TEXT NOT NULL,
    project_hash TEXT NOT NULL REFERENCES projects (hash),
    published_at TIMESTAMPTZ NOT NULL,
    UNIQUE (process, version)
);

CREATE TABLE instances (
    id            BIGSERIAL PRIMARY KEY,
    definition_id BIGINT NOT NULL REFERENCES definitions (id),
    process       TEXT NOT NULL,
    stage         TEXT NOT NULL,
    fields        JSONB NOT NULL,
    priority      TEXT,
    queue         TEXT,
    version       BIGINT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX instances_process ON instances (process, id);

CREATE TABLE events (
    instance_id BIGINT NOT NULL REFERENCES instances (id),
    seq         BIGINT NOT NULL,
    at          TIMESTAMPTZ NOT NULL,
    actor       TEXT NOT NULL,
    kind        TEXT NOT NULL,
    data        JSONB NOT NULL,
    reason      TEXT,
    PRIMARY KEY (instance_id, seq)
);

CREATE TABLE tasks (
    id          BIGSERIAL PRIMARY KEY,
    instance_id BIGINT NOT NULL REFERENCES instances (id),
    process     TEXT NOT NULL,
    stage       TEXT NOT NULL,
    queue       TEXT NOT NULL,
    priority    INTEGER NOT NULL,
    due_at      BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('open', 'claimed', 'done')),
    assigned_to TEXT,
    claimed_by  TEXT,
    lease_until BIGINT,
    token       BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX tasks_queue_order ON tasks (queue, priority, due_at, created_at, id) WHERE state <> 'done';
CREATE UNIQUE INDEX tasks_one_open_per_instance ON tasks (instance_id) WHERE state <> 'done';

CREATE TABLE links (
    from_id    BIGINT NOT NULL REFERENCES instances (id),
    to_id      BIGINT NOT NULL REFERENCES instances (id),
    kind       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (from_id, to_id, kind)
);
CREATE INDEX links_to ON links (to_id);
