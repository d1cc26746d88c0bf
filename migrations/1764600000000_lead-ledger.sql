-- The lead ledger (CONTRACT.md "The lead ledger"): what must be queried across leads or kept for
-- ever. Every table is keyed so that a retried write is a no-op (ON CONFLICT DO NOTHING / a
-- version that only moves forward).

-- Up Migration

-- Each lead's latest state: what a new run resumes from, what search and the funnel read.
CREATE TABLE leads (
  lead_id               text PRIMARY KEY,
  stage                 text NOT NULL,
  consent               text NOT NULL,
  score                 integer NOT NULL,
  owner                 text,
  campaign              text,
  channel               text,
  model                 text,
  created_at            timestamptz NOT NULL,
  became_mql_at         timestamptz,
  became_sql_at         timestamptz,
  became_opportunity_at timestamptz,
  became_customer_at    timestamptz,
  -- the public LeadState and the carried core a new run resumes from (JSON, versioned inside)
  state                 jsonb NOT NULL,
  carried               jsonb,
  -- moves forward only: a late retry of an older write never overwrites a newer state
  version               bigint NOT NULL,
  updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX leads_stage_idx ON leads (stage);
CREATE INDEX leads_became_mql_at_idx ON leads (became_mql_at);

-- Every accepted event, keyed by its idempotency key.
CREATE TABLE lead_events (
  lead_id     text NOT NULL,
  event_id    text NOT NULL,
  type        text NOT NULL,
  occurred_at timestamptz NOT NULL,
  -- when the lead's workflow applied it (its own clock): what a replay of the model needs
  applied_at  timestamptz,
  attributes  jsonb NOT NULL DEFAULT '{}'::jsonb,
  PRIMARY KEY (lead_id, event_id)
);
CREATE INDEX lead_events_applied_idx ON lead_events (lead_id, applied_at);

-- Profile changes in the order they were applied.
CREATE TABLE lead_profile_changes (
  lead_id    text NOT NULL,
  applied_at timestamptz NOT NULL,
  seq        integer NOT NULL,
  patch      jsonb NOT NULL,
  PRIMARY KEY (lead_id, applied_at, seq)
);

-- Every stage change (and sql -> sql escalation).
CREATE TABLE lead_transitions (
  lead_id    text NOT NULL,
  at         timestamptz NOT NULL,
  from_stage text NOT NULL,
  to_stage   text NOT NULL,
  reason     text NOT NULL,
  PRIMARY KEY (lead_id, at, from_stage, to_stage)
);
CREATE INDEX lead_transitions_to_idx ON lead_transitions (to_stage, at);

-- Every sales outcome (accepted, rejected, won, lost), live or imported.
CREATE TABLE lead_outcomes (
  lead_id     text NOT NULL,
  outcome     text NOT NULL,
  occurred_at timestamptz NOT NULL,
  reason      text,
  note        text,
  rep         text,
  source      text NOT NULL DEFAULT 'live',
  PRIMARY KEY (lead_id, outcome, occurred_at)
);

-- Every mail: the send ledger shared by all workers (intent before the end of DATA, then sent).
CREATE TABLE mails (
  message_id text PRIMARY KEY,
  lead_id    text NOT NULL,
  kind       text NOT NULL,
  track      text,
  step       integer,
  recipient  text,
  status     text NOT NULL,
  attempts   integer NOT NULL DEFAULT 1,
  updated_at timestamptz NOT NULL DEFAULT now(),
  sent_at    timestamptz
);
CREATE INDEX mails_lead_idx ON mails (lead_id);

-- Addresses never to mail again, under any lead id (kept as a salted hash after an erasure).
CREATE TABLE suppressions (
  address    text PRIMARY KEY,
  reason     text NOT NULL,
  lead_id    text,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Down Migration
DROP TABLE suppressions;
DROP TABLE mails;
DROP TABLE lead_outcomes;
DROP TABLE lead_transitions;
DROP TABLE lead_profile_changes;
DROP TABLE lead_events;
DROP TABLE leads;
