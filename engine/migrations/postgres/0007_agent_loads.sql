-- Least-loaded pushing counts, for its candidates only, the tasks each holds: claimed ones by
-- claimant, open pushed ones by assignee. A push then reads the candidates' tasks, not every
-- task not done (a service desk's whole backlog). Claimed tasks are few (what agents hold now)
-- and already indexed by their lease (0006), which a task has exactly while it is claimed;
-- open pushed ones get an index here. (Not an index partial on `state = 'claimed'`: 0006 says
-- why.)
CREATE INDEX tasks_open_assigned ON tasks (assigned_to) WHERE state = 'open' AND assigned_to IS NOT NULL;
