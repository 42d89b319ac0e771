-- One wake-up per instance instead of a row per due point. A row only ever said when to look
-- at an instance again (what is due is decided from its history when it fires), so the
-- earliest point is all the scheduler needs; a change that moves the points now writes one
-- row instead of deleting and inserting every escalation step of every clock.
CREATE TABLE wakeups (
    instance_id BIGINT PRIMARY KEY REFERENCES instances (id),
    due_at      BIGINT NOT NULL,        -- the earliest due point, microseconds since the epoch
    fire_at     BIGINT NOT NULL         -- due_at, or the end of a scheduler's lease on it
);
-- The scheduler claims and sleeps by this index alone, however many instances wait.
CREATE INDEX wakeups_fire_at ON wakeups (fire_at);

INSERT INTO wakeups (instance_id, due_at, fire_at)
SELECT instance_id, MIN(due_at), MIN(fire_at) FROM timers GROUP BY instance_id;

DROP TABLE timers;
