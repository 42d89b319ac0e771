-- Least-loaded pushing counts, for its candidates only, the tasks each holds: claimed ones by
-- claimant, open pushed ones by assignee, each through an index of its own. A push then reads
-- the candidates' tasks, not every task not done (a service desk's whole backlog). A claim
-- writes one more index entry for it; a pull queue's open tasks stay out of both.
CREATE INDEX tasks_claimed_by ON tasks (claimed_by) WHERE state = 'claimed';
CREATE INDEX tasks_open_assigned ON tasks (assigned_to) WHERE state = 'open' AND assigned_to IS NOT NULL;
