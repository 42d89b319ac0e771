-- itsmflow schema, SQLite. Migrations are append-only: never edit a released one.

CREATE TABLE projects (
    hash        TEXT PRIMARY KEY,
    source      TEXT NOT NULL,          -- JSON: {"files": [[name, text], ...]}
    created_at  TEXT NOT NULL
);

CREATE TABLE definitions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    process      TEXT NOT NULL,
    version      INTEGER NOT NULL,
    hash         TEXT NOT NULL,
    project_hash TEXT NOT NULL REFERENCES projects (hash),
    published_at TEXT NOT NULL,
    UNIQUE (process, version)
);

CREATE TABLE instances (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    definition_id INTEGER NOT NULL REFERENCES definitions (id),
    process       TEXT NOT NULL,
    stage         TEXT NOT NULL,
    fields        TEXT NOT NULL,        -- JSON object by field name
    priority      TEXT,
    queue         TEXT,
    version       INTEGER NOT NULL,     -- seq of the last event
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX instances_process ON instances (process, id);

CREATE TABLE events (
    instance_id INTEGER NOT NULL REFERENCES instances (id),
    seq         INTEGER NOT NULL,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    kind        TEXT NOT NULL,
    data        TEXT NOT NULL,          -- JSON, names not indices
    reason      TEXT,
    PRIMARY KEY (instance_id, seq)
) WITHOUT ROWID;

-- Times in tasks are microseconds since the Unix epoch; "none" is stored as a sentinel that
-- sorts last, so one index serves the queue order.
CREATE TABLE tasks (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id INTEGER NOT NULL REFERENCES instances (id),
    process     TEXT NOT NULL,
    stage       TEXT NOT NULL,
    queue       TEXT NOT NULL,
    priority    INTEGER NOT NULL,
    due_at      INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('open', 'claimed', 'done')),
    assigned_to TEXT,
    claimed_by  TEXT,
    lease_until INTEGER,
    token       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX tasks_queue_order ON tasks (queue, priority, due_at, created_at, id) WHERE state <> 'done';
CREATE UNIQUE INDEX tasks_one_open_per_instance ON tasks (instance_id) WHERE state <> 'done';

CREATE TABLE links (
    from_id    INTEGER NOT NULL REFERENCES instances (id),
    to_id      INTEGER NOT NULL REFERENCES instances (id),
    kind       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (from_id, to_id, kind)
);
CREATE INDEX links_to ON links (to_id);
