/**
 * Side effects of the lead workflow, built from injected dependencies so tests pass a real SMTP
 * transport pointed at their own server, their own ledger folder and their own Temporal client.
 */
import { ApplicationFailure, Context, log } from '@temporalio/activity';
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import type { Transporter } from 'nodemailer';
import type { LoadedConfig } from '../src/config-file.js';
import type { LinkSigner } from '../src/links.js';
import type { Carried } from '../workflows/defs.js';
import type { SendLedger } from './ledger.js';
import { type HandoffMail, type LeadActivities, type NurtureMail, PERMANENT_BOUNCE, type SentMail } from './types.js';

export interface ActivityDeps {
  loaded: LoadedConfig;
  transport: Transporter;
  client: Client;
  ledger: SendLedger;
  links: LinkSigner;
  clock?: () => number;
  /** Connections in the transport's pool (sends in flight at once). */
  smtpConnections?: number;
}

export const SMTP_CONNECTIONS = 4;

function semaphore(size: number) {
  let free = size;
  const waiting: (() => void)[] = [];
  return {
    async acquire(): Promise<() => void> {
      if (free > 0) free--;
      else await new Promise<void>((r) => waiting.push(r));
      return () => {
        const next = waiting.shift();
        if (next) next();
        else free++;
      };
    },
  };
}

/** Message-ID local parts allow a restricted character set; lead ids may hold `@` and `+`. */
const atom = (s: string) => s.replace(/[^A-Za-z0-9.-]/g, (c) => `=${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

export function createActivities(deps: ActivityDeps): LeadActivities {
  const { loaded, transport, client, ledger, links } = deps;
  const now = deps.clock ?? Date.now;
  const rotation = new Map<string, number>();
  const slots = semaphore(deps.smtpConnections ?? SMTP_CONNECTIONS);
  const fromDomain = /@([^>\s]+)>?\s*$/.exec(loaded.config.email.from)?.[1] ?? 'lead-nurture.local';

  async function send(messageId: string, message: Parameters<Transporter['sendMail']>[0]): Promise<SentMail> {
    const before = await ledger.state(messageId);
    if (before === 'sent') return { messageId, duplicate: true };
    if (before === 'intent') {
      log.warn('a worker died while sending this message; not resending it', { messageId });
      return { messageId, duplicate: true, uncertain: true };
    }
    // The intent is written only once this message has a connection of its own (the pool's size),
    // so a message still waiting for one is never taken for a half-sent one.
    const ctx = Context.current();
    const waiting = setInterval(() => ctx.heartbeat(), 2_000);
    const release = await slots.acquire().finally(() => clearInterval(waiting));
    try {
      // Checked again now that this attempt has a connection: another attempt of the same send
      // (a retry after a timeout) may have gone first.
      if ((await ledger.state(messageId)) !== undefined) return { messageId, duplicate: true };
      return await transmit(messageId, message);
    } finally {
      release();
    }
  }

  async function transmit(messageId: string, message: Parameters<Transporter['sendMail']>[0]): Promise<SentMail> {
    await ledger.markIntent(messageId);
    // Heartbeat while the SMTP server works: a live but slow send is not retried beside itself;
    // only a dead worker's send times out (heartbeatTimeout) and is retried.
    const ctx = Context.current();
    ctx.heartbeat();
    const beat = setInterval(() => ctx.heartbeat(), 2_000);
    try {
      await transport.sendMail({ ...message, messageId });
    } catch (err) {
      // This process saw the failure: the server did not take the message, so a retry may send.
      await ledger.withdrawIntent(messageId);
      const e = err as { responseCode?: number; command?: string; code?: string; message: string };
      if (e.responseCode && e.responseCode >= 500 && e.responseCode < 600 && e.command !== 'CONN' && e.code !== 'ECONNECTION') {
        throw ApplicationFailure.nonRetryable(`recipient refused (${e.responseCode}): ${e.message}`, PERMANENT_BOUNCE);
      }
      throw err;
    } finally {
      clearInterval(beat);
    }
    await ledger.markSent(messageId, { at: new Date(now()).toISOString(), to: message.to });
    return { messageId, duplicate: false };
  }

  return {
    async leadContext({ workflowId, runId, recover }) {
      const base = { config: loaded.config, configVersion: loaded.version };
      if (!recover) return base;
      return { ...base, previous: await previousRun(client, workflowId, runId) };
    },

    // Round robin per owner list in this worker process. A local activity: the pick is recorded
    // in the lead's history (replay-safe), costs no activity slot and no round trip, and with N
    // workers each rotates on its own (balanced within N per rule). A random start per process
    // keeps restarts from favouring the first owner.
    async assignOwner({ owners }) {
      const key = owners.join(',');
      const n = rotation.get(key) ?? Math.floor(Math.random() * owners.length);
      rotation.set(key, n + 1);
      return owners[n % owners.length]!;
    },

    async sendNurtureEmail({ lead, track, step, template }: NurtureMail) {
      const email = lead.profile.email;
      if (!email) throw ApplicationFailure.nonRetryable('lead has no email address', 'NoEmail');
      const ref = `${track}:${step}:${lead.recycleCount}`;
      const messageId = `<nurture.${atom(lead.leadId)}.${atom(track)}.${step}.${lead.recycleCount}@${fromDomain}>`;
      const t = now();
      const unsubscribe = links.url('unsubscribe', lead.leadId, t, { m: ref });
      const rendered = loaded.templates.render(template, {
        ...lead.profile, profile: lead.profile, lead,
        links: { unsubscribe, click: links.url('click', lead.leadId, t, { m: ref, u: `${links.baseUrl}/welcome` }), open: links.url('open', lead.leadId, t, { m: ref }) },
      });
      return send(messageId, {
        from: loaded.config.email.from,
        to: email,
        ...rendered,
        headers: {
          'X-Lead-Id': lead.leadId,
          'X-Nurture-Track': track,
          'X-Nurture-Step': String(step),
          'List-Unsubscribe': `<${unsubscribe}>`,
          'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
        },
      });
    },

    async sendHandoffEmail({ lead, owner, escalation }: HandoffMail) {
      const episode = `${lead.becameSqlAt ?? 'sql'}:${escalation}`;
      const messageId = `<handoff.${atom(lead.leadId)}.${atom(lead.becameSqlAt ?? 'sql')}.${escalation}@${fromDomain}>`;
      const t = now();
      const sales = links.url('sales', lead.leadId, t, { m: episode, o: owner }); // bound to this owner and episode (src/links.ts salesLinkStatus)
      const rendered = loaded.templates.render('handoff', {
        lead, profile: lead.profile, owner, escalation,
        links: { accept: `${sales}&action=accept`, reject: `${sales}&action=reject` },
      });
      return send(messageId, {
        from: loaded.config.email.from,
        to: owner,
        ...rendered,
        headers: { 'X-Lead-Id': lead.leadId, 'X-Lead-Handoff': '1' },
      });
    },
  };
}

/** The final state of the lead's latest completed run, if any (an earlier customer, dormant or disqualified run). */
async function previousRun(client: Client, workflowId: string, currentRunId: string): Promise<Carried | undefined> {
  const { executions } = await client.workflowService.listClosedWorkflowExecutions({
    namespace: client.options.namespace,
    maximumPageSize: 10,
    executionFilter: { workflowId },
  });
  const completed = (executions ?? [])
    .filter((e) => e.execution?.runId !== currentRunId && e.status === 2 /* COMPLETED */)
    .sort((a, b) => Number(b.closeTime?.seconds ?? 0) - Number(a.closeTime?.seconds ?? 0));
  for (const e of completed) {
    try {
      const result = (await client.workflow.getHandle(workflowId, e.execution!.runId!).result()) as Carried | undefined;
      if (result?.core) return result;
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
  }
  return undefined;
}
