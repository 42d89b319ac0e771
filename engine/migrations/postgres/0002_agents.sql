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

-- Claims look for open tasks and for claimed tasks whose lease ran out, separately: an index on
-- open tasks only stays small (a claim moves the row out of it), where one over every task not
-- done fills up, at its front, with versions of rows claimed moments ago.
DROP INDEX tasks_queue_order;
CREATE INDEX tasks_queue_open ON tasks (queue, priority, due_at, created_at, id) WHERE state = 'open';
CREATE INDEX tasks_queue_claimed ON tasks (queue, lease_until) WHERE state = 'claimed';

-- Instances are rewritten at every action without touching an indexed column: room in each
-- page lets PostgreSQL update them in place (HOT), without new index entries.
ALTER TABLE instances SET (fillfactor = 70);
