-- Leases are found by when they end. The index of claimed tasks was partial on
-- `state = 'claimed'`, the very condition that renewing, releasing and completing a task check
-- beside its id: while few tasks were claimed, PostgreSQL could plan to read that whole index,
-- with every dead entry the churn of claims leaves in it, to find one id, and a pooled
-- connection keeps a plan once made. An index partial on the lease itself serves the sweep of
-- expired leases (`lease_until <= $1` implies it) and matches no lookup of a task by id.
-- A task has a lease exactly while it is claimed: every statement that ends a claim clears it.
DROP INDEX tasks_queue_claimed;
CREATE INDEX tasks_leases ON tasks (lease_until) WHERE lease_until IS NOT NULL;
