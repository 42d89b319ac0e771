-- Approval ballots waiting to be cast, for "my approvals": a copy of what the history says
-- (who may vote on each open level, and who has not yet), replaced whole for an instance by
-- every change that opens, delegates or closes a level. Times in microseconds.
CREATE TABLE ballots (
    instance_id  BIGINT NOT NULL REFERENCES instances (id),
    approver     TEXT NOT NULL,         -- who is to vote: the approver, or their delegate
    on_behalf_of TEXT,                  -- the approver, when delegated
    level        INTEGER NOT NULL,
    process      TEXT NOT NULL,
    stage        TEXT NOT NULL,
    opened_at    BIGINT NOT NULL,
    PRIMARY KEY (instance_id, approver)
);
-- "My approvals" reads one approver's ballots, oldest first.
CREATE INDEX ballots_approver ON ballots (approver, opened_at, instance_id);

-- Notifications for some holders of a role only (the approvers of a level, say): their names
-- as a JSON array; NULL for every holder.
ALTER TABLE notifications ADD COLUMN recipients TEXT;
