-- The configs leads have scored with (issue 12): each version a worker ran or a rollout made
-- running, in its file form with its templates, so that what-if can replay a lead under the
-- config it lived with and every worker can take the rolled-out one. The running config is the
-- latest rolled out; none rolled out: each worker's own LEAD_CONFIG file.

-- Up Migration
CREATE TABLE configs (
  version       text PRIMARY KEY,
  raw           jsonb NOT NULL,
  templates     jsonb NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  rolled_out_at timestamptz
);
CREATE INDEX configs_rolled_out_idx ON configs (rolled_out_at) WHERE rolled_out_at IS NOT NULL;

-- Down Migration
DROP TABLE configs;
