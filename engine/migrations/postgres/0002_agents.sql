-- Agents who can be pushed work (round-robin and least-loaded queues), and whether they are
-- taking work now.
CREATE TABLE agents (
    name       TEXT PRIMARY KEY,
    roles      JSONB NOT NULL,
    active     BOOLEAN NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
-- Only pushed tasks are indexed by assignee, so pull queues pay nothing for this.
CREATE INDEX tasks_queue_assigned ON tasks (queue, id) WHERE assigned_to IS NOT NULL;

-- Updates rewrite instances and tasks all day: leave room in each page for the new version.
ALTER TABLE instances SET (fillfactor = 80);
ALTER TABLE tasks SET (fillfactor = 80);
