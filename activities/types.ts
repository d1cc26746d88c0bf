import type { Config } from '../src/domain/config.js';
import type { LeadState } from '../src/domain/lead.js';
import type { Carried } from '../workflows/defs.js';

export interface LeadContext {
  config: Config;
  configVersion: string;
  /** The final state of the lead's last completed run, when this run is a fresh start. */
  previous?: Carried;
}

export interface NurtureMail { lead: LeadState; track: string; step: number; template: string }
export interface HandoffMail { lead: LeadState; owner: string; escalation: number }
/**
 * `duplicate`: an earlier attempt already got it to the server. `uncertain`: an earlier attempt's
 * worker died mid-send, so the server may or may not have it; it is not resent.
 */
export interface SentMail { messageId: string; duplicate: boolean; uncertain?: boolean; resent?: boolean }

/** The activity surface the workflows call (implemented by createActivities). */
export interface LeadActivities {
  leadContext(input: { workflowId: string; runId: string; recover: boolean }): Promise<LeadContext>;
  assignOwner(input: { leadId: string; rule: number; owners: string[] }): Promise<string>;
  sendNurtureEmail(mail: NurtureMail): Promise<SentMail>;
  sendHandoffEmail(mail: HandoffMail): Promise<SentMail>;
}

/** Failure type an email activity raises when the recipient's server refuses it for good (5xx). */
export const PERMANENT_BOUNCE = 'PermanentBounce';
