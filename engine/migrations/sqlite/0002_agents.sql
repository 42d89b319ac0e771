-- Agents who can be pushed work (round-robin and least-loaded queues), and whether they are
-- taking work now.
CREATE TABLE agents (
    name       TEXT PRIMARY KEY,
    roles      TEXT NOT NULL,           -- JSON array of role names
    active     INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);
-- Only pushed tasks are indexed by assignee, so pull queues pay nothing for this.
CREATE INDEX tasks_queue_assigned ON tasks (queue, id) WHERE assigned_to IS NOT NULL;
