-- Reads over the ledger's leads: search (LeadLedger.search) and the cohort funnel
-- (LeadLedger.cohorts / funnel).
--
-- Search: every filter is an equality on one column (stage, owner, campaign) or a lower bound on
-- score, and pages are keyset pages in lead_id order. An index per equality filter with lead_id
-- after it gives each page as one index range read in page order, however many leads match;
-- (stage, lead_id) also serves what (stage) did (stage counts too), so it replaces it.
--
-- Funnel: the cohort is the leads with a first MQL date in a window, and it reads only the stage
-- dates and the group columns. A `leads` row carries the whole LeadState (~1.5 kB), so reading
-- the cohort from the table reads nearly every page of it; this partial index holds just what
-- the cohort reads, so the cohort is an index-only range read (once VACUUM has marked the pages
-- all-visible). It replaces (became_mql_at): every cohort query has became_mql_at IS NOT NULL,
-- and a range on became_mql_at implies it. The included columns are set once in a lead's life
-- (stage dates) or rarely (campaign, channel, model), so they seldom cost a lead update its HOT.

-- Up Migration
CREATE INDEX leads_stage_lead_idx ON leads (stage, lead_id);
DROP INDEX leads_stage_idx;
CREATE INDEX leads_owner_lead_idx ON leads (owner, lead_id);
CREATE INDEX leads_campaign_lead_idx ON leads (campaign, lead_id);
-- minScore alone: the leads above a high score are few, found from here and sorted.
CREATE INDEX leads_score_idx ON leads (score);
CREATE INDEX leads_cohort_idx ON leads (became_mql_at)
  INCLUDE (became_sql_at, became_opportunity_at, became_customer_at, campaign, channel, model)
  WHERE became_mql_at IS NOT NULL;
DROP INDEX leads_became_mql_at_idx;

-- Down Migration
CREATE INDEX leads_became_mql_at_idx ON leads (became_mql_at);
DROP INDEX leads_cohort_idx;
DROP INDEX leads_score_idx;
DROP INDEX leads_campaign_lead_idx;
DROP INDEX leads_owner_lead_idx;
CREATE INDEX leads_stage_idx ON leads (stage);
DROP INDEX leads_stage_lead_idx;
