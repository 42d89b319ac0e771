-- Agents who can be pushed work (round-robin and least-loaded queues), and whether they are
-- taking work now.
CREATE TABLE agents (
    name       TEXT PRIMARY KEY,
    roles      JSONB NOT NULL,
    active     BOOLEAN NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX tasks_assigned ON tasks (assigned_to) WHERE state <> 'done';
CREATE INDEX tasks_claimed ON tasks (claimed_by) WHERE state <> 'done';
CREATE INDEX tasks_queue_assigned ON tasks (queue, id) WHERE assigned_to IS NOT NULL;
