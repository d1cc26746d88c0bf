-- Erasure (GDPR article 17, CONTRACT.md "Integrations": DELETE /v1/leads/:leadId). An erased lead
-- leaves no row holding its id or its address. What stays is keyed by salted hashes (HMAC-SHA256
-- with a random per-installation salt, never derived from anything the lead gave):
--   - `erasures`: that a lead id was erased and when, so a late event, an old mail link or a
--     retried import for it creates nothing (a new LeadInput with consent creates a new lead);
--   - a `suppressions` row whose address is `hmac-sha256:<hex>` of the normalized address, so the
--     address is never mailed again under any lead id (the suppression check compares both forms).
-- The salt is in `ledger_settings`; without it the hashes cannot be matched to an address.

-- Up Migration
CREATE TABLE ledger_settings (
  key        text PRIMARY KEY,
  value      text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE erasures (
  lead_hash text PRIMARY KEY,
  erased_at timestamptz NOT NULL DEFAULT now()
);

-- Down Migration
DROP TABLE erasures;
DROP TABLE ledger_settings;
