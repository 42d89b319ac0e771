-- Timers: every future due point of an instance (escalation steps, breaches, automatic
-- transitions), replaced with the instance's state in the same transaction. Times are
-- microseconds since the Unix epoch, like the tasks'.
CREATE TABLE timers (
    id          INTEGER PRIMARY KEY,    -- ids of fired timers may be reused: nothing refers to them
    instance_id INTEGER NOT NULL REFERENCES instances (id),
    kind        TEXT NOT NULL CHECK (kind IN ('escalation', 'breach', 'after')),
    what        TEXT NOT NULL,          -- the clock, or the transition
    step        INTEGER NOT NULL,       -- the escalation step, 0 otherwise
    cycle       INTEGER NOT NULL,       -- the clock's start, or the event that entered the stage
    due_at      INTEGER NOT NULL,
    fire_at     INTEGER NOT NULL,       -- due_at, or the end of a scheduler's lease on it
    UNIQUE (instance_id, kind, what, step, cycle)
);
-- The scheduler claims and sleeps by this index alone, however many timers are pending.
CREATE INDEX timers_fire_at ON timers (fire_at);

-- The notifications outbox: written with the change that notifies, read and marked delivered
-- by whoever delivers them. A notification held to business hours waits for deliver_at.
CREATE TABLE notifications (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id  INTEGER NOT NULL REFERENCES instances (id),
    role         TEXT NOT NULL,
    clock        TEXT,
    threshold    TEXT,
    message      TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    deliver_at   INTEGER NOT NULL,
    delivered_at INTEGER
);
CREATE INDEX notifications_undelivered ON notifications (deliver_at, id) WHERE delivered_at IS NULL;
CREATE INDEX notifications_instance ON notifications (instance_id, id);
