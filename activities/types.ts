import type { Config } from '../src/domain/config.js';
import type { EventFact } from '../src/domain/lifecycle.js';
import type { MailLead } from '../src/domain/mail.js';
import type { LedgerBatch } from '../src/ledger/ledger.js';
import type { CarriedState } from '../workflows/defs.js';

export interface RunContext {
  config: Config;
  configVersion: string;
  /**
   * When this run is a fresh start (not a continue-as-new): where the lead was, from the ledger's
   * latest state (a lead is never forgotten), else from its last completed run (runs from before
   * the ledger).
   */
  previous?: CarriedState;
  /**
   * With `rescoreFrom` naming a version other than the running one (the issue-12 patch): the
   * lead's recorded events, in the order it applied them, to re-score it from (model.rescore).
   */
  events?: EventFact[];
}

/**
 * A mail activity's input: the lead as `mailLead` (src/domain/mail.ts) bounds it, never the whole
 * state. (A retry scheduled before this change carries the full LeadState, a superset: it still renders.)
 */
export interface NurtureMail {
  lead: MailLead;
  track: string;
  step: number;
  template: string;
}
export interface HandoffMail {
  lead: MailLead;
  owner: string;
  escalation: number;
}
/**
 * `duplicate`: an earlier attempt already got it to the server (or, with `uncertain`, may have).
 * `uncertain` (nurture mail, at most once): the connection failed after the message had been
 * handed to the server (or a worker died then), so the server may or may not have it; it is not
 * resent. `resent` (handoff mail, at least once): such an uncertain send was sent again, with the
 * same Message-ID, so the owner gets it at least once and a receiver can drop a copy.
 */
export interface SentMail {
  messageId: string;
  duplicate: boolean;
  uncertain?: boolean;
  resent?: boolean;
}

/** The activity surface the workflows call (implemented by createActivities). */
export interface LeadActivities {
  /**
   * What a run starts from (and reloads on configChanged): the config, and with `recover` where the
   * lead was. The name is recorded in every lead's history (its local-activity markers): renaming it
   * would need a patch and both names registered, so it stays.
   */
  leadContext(input: {
    workflowId: string;
    runId: string;
    recover: boolean;
    /** The config version the lead scores with: a different running one comes with the lead's events. */
    rescoreFrom?: string;
  }): Promise<RunContext>;
  /** Writes what one iteration of the lead's loop changed into the ledger (idempotent). */
  recordLead(batch: LedgerBatch): Promise<void>;
  assignOwner(input: { leadId: string; rule: number; owners: string[] }): Promise<string>;
  sendNurtureEmail(mail: NurtureMail): Promise<SentMail>;
  sendHandoffEmail(mail: HandoffMail): Promise<SentMail>;
}

/** Failure type an email activity raises when the recipient's server refuses it for good (5xx). */
export const PERMANENT_BOUNCE = 'PermanentBounce';
