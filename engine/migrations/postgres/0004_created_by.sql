-- Who created each instance: the actor of its first event (for a spawned instance, whoever
-- performed the transition that spawned it). Written once, at insert, and never changed.
ALTER TABLE instances ADD COLUMN created_by TEXT;
UPDATE instances i
   SET created_by = e.actor
  FROM events e
 WHERE e.instance_id = i.id AND e.seq = 1;

-- Listing instances is newest first (`ORDER BY id DESC`), filtered by process, stage, queue or
-- creator, so each filter is served either by an index on (filter, id), read backwards, or by
-- walking the primary key backwards until the page is full.
--
-- - process: `instances_process (process, id)` from 0001 already serves it.
-- - created_by: indexed here. "What I raised" is the common selective query (a requester has a
--   handful of instances among millions), where walking the primary key would read the whole
--   table. The column never changes, so only creation pays for it: one more B-tree insert;
--   updates stay HOT (0002).
-- - stage and queue: not indexed. They change at most actions, and an index on either would make
--   those updates non-HOT (0002): every transition would write a new entry into every index of
--   `instances`, not only at creation. Such a filter walks the primary key backwards until the
--   page is full: short when the stage or queue is common among recent instances, long for one
--   that is rare. With a process or creator filter beside it, that filter's index narrows the
--   walk; the open work of a queue is indexed already, by the tasks (`queue_tasks`).
-- - combinations (process + creator, ...): no composite index; one filter's index plus the
--   others as row filters is enough for pages of tens of rows, and each composite would be
--   another write at every creation.
CREATE INDEX instances_created_by ON instances (created_by, id);
