-- Outgoing webhooks (issue 13 part 2): a transactional outbox. The statement that writes a lead's
-- iteration (LeadLedger.record) inserts one row per (endpoint subscribed to the change's type,
-- change) with a webhook id derived from the change itself, so a retried write inserts nothing
-- new and every attempt to deliver one change carries the same `webhook-id`. A per-(endpoint,
-- lead) delivery workflow sends a lead's pending rows in `seq` order; every attempt is logged.
-- Rows carry the run and write version like the lead's other rows: a failed workflow task
-- attempt's row that was never attempted is removed with the attempt's other phantoms.

-- Up Migration
CREATE TABLE webhook_deliveries (
  seq bigserial NOT NULL UNIQUE,
  endpoint_id text NOT NULL,
  webhook_id text NOT NULL,
  lead_id text NOT NULL,
  event_type text NOT NULL,
  payload text NOT NULL,
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts integer NOT NULL DEFAULT 0,
  last_status integer,
  last_error text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  delivered_at timestamptz,
  run_id text,
  run_version bigint,
  PRIMARY KEY (endpoint_id, webhook_id)
);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (endpoint_id, lead_id, seq) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_lead ON webhook_deliveries (lead_id, seq);

CREATE TABLE webhook_attempts (
  endpoint_id text NOT NULL,
  webhook_id text NOT NULL,
  attempt integer NOT NULL,
  at timestamptz NOT NULL DEFAULT now(),
  status_code integer,
  error text,
  duration_ms integer NOT NULL,
  PRIMARY KEY (endpoint_id, webhook_id, attempt, at),
  FOREIGN KEY (endpoint_id, webhook_id) REFERENCES webhook_deliveries (endpoint_id, webhook_id) ON DELETE CASCADE
);

-- Down Migration
DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
