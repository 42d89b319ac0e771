-- A task's OLA due time: when the ticket's stay in the task's queue reaches the queue's
-- operational-level target (microseconds; i64::MAX for none, as due_at), so agents can sort a
-- queue by it.
ALTER TABLE tasks ADD COLUMN ola_due_at BIGINT NOT NULL DEFAULT 9223372036854775807;
