-- The send ledger moves into the database (it was files on a volume): a resent handoff says so,
-- an uncertain send says why.

-- Up Migration
ALTER TABLE mails ADD COLUMN resent boolean NOT NULL DEFAULT false;
ALTER TABLE mails ADD COLUMN reason text;
ALTER TABLE mails ALTER COLUMN attempts SET DEFAULT 1;

-- Down Migration
ALTER TABLE mails DROP COLUMN reason;
ALTER TABLE mails DROP COLUMN resent;
