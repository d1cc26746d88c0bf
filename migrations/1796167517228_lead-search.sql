-- Search over the ledger's leads (LeadLedger.search): every filter is an equality on one column
-- (stage, owner, campaign) or a lower bound on score, and pages are keyset pages in lead_id order.
-- An index per equality filter with lead_id after it gives each page as one index range read in
-- page order, however many leads match; (stage, lead_id) also serves what (stage) did, so it
-- replaces it (one index less to keep up on every lead write).

-- Up Migration
CREATE INDEX leads_stage_lead_idx ON leads (stage, lead_id);
DROP INDEX leads_stage_idx;
CREATE INDEX leads_owner_lead_idx ON leads (owner, lead_id);
CREATE INDEX leads_campaign_lead_idx ON leads (campaign, lead_id);
-- minScore alone: the leads above a high score are few, found from here and sorted.
CREATE INDEX leads_score_idx ON leads (score);

-- Down Migration
DROP INDEX leads_score_idx;
DROP INDEX leads_campaign_lead_idx;
DROP INDEX leads_owner_lead_idx;
CREATE INDEX leads_stage_idx ON leads (stage);
DROP INDEX leads_stage_lead_idx;
