-- Deliveries are claimed, so several deliverers never post one notification twice: a claim
-- leases the row until claimed_until (microseconds) and counts the attempt; a failed attempt
-- sets claimed_until to when to try again, and gives up (dead_at) after too many.
ALTER TABLE notifications ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE notifications ADD COLUMN claimed_until INTEGER;
ALTER TABLE notifications ADD COLUMN last_error TEXT;
ALTER TABLE notifications ADD COLUMN dead_at INTEGER;
