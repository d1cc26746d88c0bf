-- A lead's loop writes the ledger from a local activity, inside a workflow task. A task that
-- fails after that write (its worker killed, its task timed out) never completes: the retried
-- task decides again, at its own clock, and writes again. What the failed attempt wrote is a
-- phantom: nothing in the workflow's history stands behind it.
--
-- Each row a run writes carries the run and the version of the write (run_id, run_version), and
-- each write says the version of the run's previous write, the last one a completed task stands
-- behind: the run's rows above it that the write does not repeat are a failed attempt's, and go.
-- The lead's row keeps what it said before the run's first write (run_origin): a run whose first
-- task is retried resumes from that, not from its own failed attempt (which had, for one, already
-- taken the welcome step it never sent).

-- Up Migration
ALTER TABLE leads ADD COLUMN run_id text;
ALTER TABLE leads ADD COLUMN run_origin jsonb;
ALTER TABLE lead_events ADD COLUMN run_id text;
ALTER TABLE lead_events ADD COLUMN run_version bigint;
ALTER TABLE lead_profile_changes ADD COLUMN run_id text;
ALTER TABLE lead_profile_changes ADD COLUMN run_version bigint;
ALTER TABLE lead_transitions ADD COLUMN run_id text;
ALTER TABLE lead_transitions ADD COLUMN run_version bigint;
ALTER TABLE lead_outcomes ADD COLUMN run_id text;
ALTER TABLE lead_outcomes ADD COLUMN run_version bigint;

-- Down Migration
ALTER TABLE lead_outcomes DROP COLUMN run_version;
ALTER TABLE lead_outcomes DROP COLUMN run_id;
ALTER TABLE lead_transitions DROP COLUMN run_version;
ALTER TABLE lead_transitions DROP COLUMN run_id;
ALTER TABLE lead_profile_changes DROP COLUMN run_version;
ALTER TABLE lead_profile_changes DROP COLUMN run_id;
ALTER TABLE lead_events DROP COLUMN run_version;
ALTER TABLE lead_events DROP COLUMN run_id;
ALTER TABLE leads DROP COLUMN run_origin;
ALTER TABLE leads DROP COLUMN run_id;
