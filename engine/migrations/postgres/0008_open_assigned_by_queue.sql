-- Claims served together (store/postgres/claims.rs) ask, for each agent in the batch, whether
-- it has open tasks pushed to it in the queue. The index of open pushed tasks (0007) gets the
-- queue as its second column, so that is one probe per agent; least-loaded counts still read it
-- by assignee alone.
DROP INDEX tasks_open_assigned;
CREATE INDEX tasks_open_assigned ON tasks (assigned_to, queue) WHERE state = 'open' AND assigned_to IS NOT NULL;
