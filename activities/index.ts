/**
 * Side effects of the lead workflow, built from injected dependencies so tests pass a real SMTP
 * transport pointed at their own server, their own ledger folder and their own Temporal client.
 */
import { ApplicationFailure, Context, log } from '@temporalio/activity';
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import type { Transporter } from 'nodemailer';
import { Readable } from 'node:stream';
import type { LoadedConfig } from '../src/config-file.js';
import { RunningConfig } from '../src/running-config.js';
import { leadEvents } from '../src/ledger/histories.js';
import type { LinkSigner } from '../src/links.js';
import type { CarriedState } from '../workflows/defs.js';
import { leadIdOfWorkflowId } from '../src/domain/lead.js';
import { digestEventId, RECENT_EVENT_IDS } from '../src/domain/recent-ids.js';
import type { LeadLedger, LedgerBatch } from '../src/ledger/ledger.js';
import { HARD_BOUNCE, UNSUBSCRIBE } from '../src/domain/event-types.js';
import type { MailRef, SendLedger } from './ledger.js';
import { type HandoffMail, type LeadActivities, type NurtureMail, PERMANENT_BOUNCE, type SentMail } from './types.js';
import { formatEpisode } from '../src/domain/episode.js';
import { factorWords } from '../src/domain/mail.js';
import { handoffView } from '../src/domain/handoff-view.js';
import { outboxRows } from '../src/webhooks/outbox.js';
import { createWebhookActivities, wakeDeliveries, type WebhookActivities } from './webhooks.js';

export interface ActivityDeps {
  loaded: LoadedConfig;
  /** The running config (the file's, or the ledger's latest rollout); by default over `ledger`. */
  running?: RunningConfig;
  transport: Transporter;
  client: Client;
  /** The send ledger (the `mails` table of the lead ledger's database). */
  sendLedger: SendLedger;
  /** The lead ledger: what each lead's loop records, and what a new run resumes from. */
  ledger: LeadLedger;
  links: LinkSigner;
  clock?: () => number;
}

/** Connections in the worker's SMTP pool (sends in flight at once; the pool queues the rest). */
export const SMTP_CONNECTIONS = 4;

/** Message-ID local parts allow a restricted character set; lead ids may hold `@` and `+`. */
const atom = (s: string) => s.replace(/[^A-Za-z0-9.-]/g, (c) => `=${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

/** How a mail is delivered when a send's outcome is uncertain. */
type Delivery = 'at-most-once' | 'at-least-once';

/** The sendMail option through which a send says what to do just before its DATA ends (read by the plugin below). */
const END_OF_DATA = 'leadEndOfData';
type EndOfData = () => Promise<void>;

/**
 * The message stream nodemailer's SMTP connection pipes into DATA, holding back its end (after
 * which the connection writes the `<CRLF>.<CRLF>` terminator) until `endOfData` has run.
 *
 * It has to be the last stage of the message stream: nodemailer pipes a message's parts, a `raw`
 * body or its transforms into buffers as soon as it takes the message from the pool's queue,
 * before MAIL FROM, so a stream there would be drained long before the server said 354. The
 * stream a `processFunc` returns is the one SMTPConnection.send pipes into its DataStream, and
 * only after the envelope was accepted (smtp-connection `send`: `message.pipe(stream)` in the
 * `_setEnvelope` callback); its first read is the start of DATA, its end the terminator
 * (DataStream `_flush`).
 */
class HeldEnd extends Readable {
  private started = false;
  /** True once the end was let through: from here on, the server may hold the message. */
  released = false;
  constructor(
    private readonly input: Readable,
    private readonly endOfData: EndOfData,
  ) {
    super();
  }
  override _read() {
    if (this.started) return;
    this.started = true;
    void (async () => {
      try {
        // No backpressure needed: a message is small and bounded (its input is, see src/domain/mail.ts).
        for await (const chunk of this.input) this.push(chunk);
        if (this.destroyed) return; // the connection failed mid-DATA: no intent, a clean failure
        await this.endOfData();
        if (this.destroyed) return; // the connection went away meanwhile: no terminator was written
        this.released = true;
        this.push(null);
      } catch (err) {
        this.destroy(err as Error);
      }
    })();
  }
  override _destroy(err: Error | null, cb: (err?: Error | null) => void) {
    this.input.destroy(); // the connection is gone: release what the message reads from
    cb(err);
  }
}

/** Registers the plugin that gives each send with an END_OF_DATA hook its HeldEnd stream (once per transport). */
const withHeldEnd = new WeakSet<Transporter>();
const held = new WeakMap<EndOfData, HeldEnd[]>();
function holdEndOfData(transport: Transporter) {
  if (withHeldEnd.has(transport)) return;
  withHeldEnd.add(transport);
  transport.use('stream', (mail, done) => {
    const endOfData = (mail.data as Record<string, unknown>)[END_OF_DATA] as EndOfData | undefined;
    if (endOfData) {
      // Called again for each connection the pool tries (it requeues a message not yet read).
      mail.message.processFunc((input) => {
        const s = new HeldEnd(input, endOfData);
        const list = held.get(endOfData);
        if (list) list.push(s);
        else held.set(endOfData, [s]);
        return s;
      });
    }
    done();
  });
}

export function createActivities(deps: ActivityDeps): LeadActivities & WebhookActivities {
  const { loaded, transport, client, sendLedger: mails, ledger, links } = deps;
  const running = deps.running ?? new RunningConfig(loaded, ledger.pool, (l) => log.info(l));
  const now = deps.clock ?? Date.now;
  const rotation = new Map<string, number>();
  const fromDomain = /@([^>\s]+)>?\s*$/.exec(loaded.config.email.from)?.[1] ?? 'lead-nurture.local';
  holdEndOfData(transport);

  async function send(
    mail: MailRef,
    message: Parameters<Transporter['sendMail']>[0],
    delivery: Delivery,
    gate?: () => Promise<void>,
  ): Promise<SentMail> {
    const { messageId } = mail;
    const before = await mails.state(messageId);
    if (before.state === 'sent') return { messageId, duplicate: true, ...(before.resent ? { resent: true } : {}) };
    // Checked only when no attempt may have delivered it: a mail already handed over is what it was.
    if (before.state === undefined || before.state === 'suppressed') await gate?.();
    let resend = false;
    if (before.state === 'intent' || before.state === 'uncertain') {
      // An earlier attempt ended the message's DATA and never heard back (its worker died, or the
      // connection failed): the server may or may not have it.
      if (before.state === 'intent')
        await mails.markUncertain(mail, {
          at: new Date(now()).toISOString(),
          reason: 'a worker died at the end of DATA',
        });
      if (delivery === 'at-most-once') {
        log.warn('mail delivery uncertain: an earlier attempt may have delivered it; not resending', {
          messageId,
          uncertain: true,
        });
        return { messageId, duplicate: true, uncertain: true };
      }
      log.warn('mail delivery uncertain: resending it with the same Message-ID (at least once)', {
        messageId,
        uncertain: true,
        resent: true,
      });
      resend = true;
    }
    return transmit(mail, message, delivery, resend);
  }

  async function transmit(
    mail: MailRef,
    message: Parameters<Transporter['sendMail']>[0],
    delivery: Delivery,
    resend: boolean,
  ): Promise<SentMail> {
    const { messageId } = mail;
    // Heartbeat while the pool queues the message and the SMTP server works: a live but slow send
    // is not retried beside itself; only a dead worker's send times out (heartbeatTimeout) and is
    // retried. No intent exists while the message waits for a connection, so a worker killed then
    // leaves nothing uncertain behind.
    const ctx = Context.current();
    ctx.heartbeat();
    const beat = setInterval(() => ctx.heartbeat(), 2_000);
    let mine = false;
    let marking: Promise<unknown> | undefined;
    const endOfData: EndOfData = async () => {
      if (resend) return; // the earlier attempt's intent (now uncertain) stands for this one too
      marking = mails.markIntent(mail).then((created) => (mine = created));
      await marking;
      // Another attempt of this send (a retry beside a stalled one) got here first: this one
      // stops before the terminator, so the server drops its copy.
      if (!mine) throw new Error(`another attempt is sending ${messageId}`);
    };
    try {
      await transport.sendMail({ ...message, messageId, [END_OF_DATA]: endOfData } as Parameters<
        Transporter['sendMail']
      >[0]);
    } catch (err) {
      const e = err as { responseCode?: number; command?: string; code?: string; message: string };
      // The connection may have failed while the intent was being written: wait for it, so an
      // intent whose terminator never went out is withdrawn, not left looking like a dead worker's.
      await marking?.catch(() => undefined);
      const released = held.get(endOfData)?.some((s) => s.released) ?? false;
      // After the terminator, only a reply settles it: a 4xx/5xx says the server did not take
      // the message; a connection that failed before any reply leaves it uncertain.
      if (released && !e.responseCode) {
        await mails.markUncertain(mail, { at: new Date(now()).toISOString(), reason: e.message });
        if (delivery === 'at-most-once') {
          log.warn('mail delivery uncertain: the connection failed after the message was handed over; not resending', {
            messageId,
            uncertain: true,
            error: e.message,
          });
          return { messageId, duplicate: false, uncertain: true };
        }
        log.warn(
          'mail delivery uncertain: the connection failed after the message was handed over; the retry resends it',
          { messageId, uncertain: true, error: e.message },
        );
        throw err;
      }
      // The server did not take it: a retry may send.
      if (mine) await mails.withdrawIntent(messageId);
      if (
        e.responseCode &&
        e.responseCode >= 500 &&
        e.responseCode < 600 &&
        e.command !== 'CONN' &&
        e.code !== 'ECONNECTION'
      ) {
        // A lead's address refused for good is never mailed again, under any lead id.
        if (mail.kind === 'nurture' && mail.recipient)
          await ledger.suppress(mail.recipient, 'hard_bounce', mail.leadId);
        throw ApplicationFailure.nonRetryable(`recipient refused (${e.responseCode}): ${e.message}`, PERMANENT_BOUNCE);
      }
      throw err;
    } finally {
      clearInterval(beat);
      held.delete(endOfData);
    }
    await mails.markSent(mail, { at: new Date(now()).toISOString(), ...(resend ? { resent: true } : {}) });
    return { messageId, duplicate: false, ...(resend ? { resent: true } : {}) };
  }

  return {
    ...createWebhookActivities({ client, ledger, endpoints: () => running.loaded.config.webhooks }),
    async leadContext({ workflowId, runId, recover, rescoreFrom }) {
      // A reload (configChanged) or a new run asks the ledger now; a new lead's start within a second of another's does not.
      const current = await running.latest(!recover);
      const base = { config: current.config, configVersion: current.version };
      if (rescoreFrom !== undefined && rescoreFrom !== current.version)
        return { ...base, events: await leadEvents(ledger.pool, leadIdOfWorkflowId(workflowId)) };
      if (!recover) return base;
      return {
        ...base,
        previous:
          (await fromLedger(ledger, leadIdOfWorkflowId(workflowId), runId)) ??
          (await previousRun(client, workflowId, runId)),
      };
    },

    // A local activity, retried until the database answers: the lead's loop waits for it, so what
    // a completed workflow task says is in the ledger (reads see their writes).
    async recordLead(batch) {
      // The address first: once the ledger shows the lead unsubscribed, its address is suppressed.
      await suppressFromEvents(ledger, batch);
      // The webhooks this write sends go in with it (a transactional outbox, src/webhooks/outbox.ts).
      const endpoints = running.loaded.config.webhooks;
      const webhooks = outboxRows(batch, endpoints);
      await ledger.record(webhooks.length ? { ...batch, webhooks } : batch);
      if (webhooks.length) {
        const { taskQueue } = Context.current().info;
        await wakeDeliveries(client, taskQueue, endpoints, batch.leadId, new Set(webhooks.map((w) => w.endpointId)));
      }
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
      const target = running.loaded.templates.sources[template]?.link;
      const rendered = running.loaded.templates.render(template, {
        ...lead.profile,
        profile: lead.profile,
        lead,
        links: {
          unsubscribe,
          // The template's own page (its `link`; a template that has a click link must name one).
          ...(target ? { click: links.url('click', lead.leadId, t, { m: ref, u: target }) } : {}),
          open: links.url('open', lead.leadId, t, { m: ref }),
        },
      });
      const mail: MailRef = { messageId, leadId: lead.leadId, kind: 'nurture', track, step, recipient: email };
      // The address-level list (any lead id, any case): a suppressed address gets nothing, and the
      // workflow takes the answer as it takes a permanent refusal (no more nurture mail).
      const checkSuppression = async () => {
        const suppressed = await ledger.suppression(email);
        if (!suppressed) return;
        const reason = `address suppressed (${suppressed.reason})`;
        await mails.markSuppressed(mail, { at: new Date(now()).toISOString(), reason });
        log.info('nurture mail not sent: the address is suppressed', { messageId, reason: suppressed.reason });
        throw ApplicationFailure.nonRetryable(`${reason}: not sent`, PERMANENT_BOUNCE);
      };
      return send(
        mail,
        {
          from: running.loaded.config.email.from,
          to: email,
          ...rendered,
          headers: {
            'X-Lead-Id': lead.leadId,
            'X-Nurture-Track': track,
            'X-Nurture-Step': String(step),
            'List-Unsubscribe': `<${unsubscribe}>`,
            'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
          },
        },
        'at-most-once',
        checkSuppression,
      );
    },

    async sendHandoffEmail({ lead, owner, escalation }: HandoffMail) {
      const episode = formatEpisode(lead.becameSqlAt, escalation);
      const messageId = `<handoff.${atom(lead.leadId)}.${atom(lead.becameSqlAt ?? 'sql')}.${escalation}@${fromDomain}>`;
      const t = now();
      const sales = links.url('sales', lead.leadId, t, { m: episode, o: owner }); // bound to this owner and episode (src/links.ts salesLinkStatus)
      const { config } = running.loaded;
      const rendered = running.loaded.templates.render('handoff', {
        lead,
        profile: lead.profile,
        factors: factorWords(lead.score.factors ?? []),
        // The same facts in words, in the owner's time zone (src/domain/handoff-view.ts).
        view: handoffView(lead, { timeZone: config.owners[owner]?.timezone ?? 'UTC', now: t }),
        owner,
        escalation,
        links: { accept: `${sales}&action=accept`, reject: `${sales}&action=reject` },
      });
      return send(
        { messageId, leadId: lead.leadId, kind: 'handoff', step: escalation, recipient: owner },
        {
          from: running.loaded.config.email.from,
          to: owner,
          ...rendered,
          headers: { 'X-Lead-Id': lead.leadId, 'X-Lead-Handoff': '1' },
        },
        'at-least-once',
      );
    },
  };
}

/** Event types that put the lead's address on the suppression list, and the reason they record. */
const SUPPRESSING: Record<string, string> = { [UNSUBSCRIBE]: 'unsubscribed', [HARD_BOUNCE]: 'hard_bounce' };
const WORKFLOW_BOUNCE = /^bounce:.+:\d+:\d+$/;

/**
 * An unsubscribe or hard bounce the lead's loop applied suppresses its address (whichever entry
 * point it came through: the API, a mail link, leadctl, an import, a permanent SMTP refusal). Done
 * here, in the local activity that records the batch, not in workflow code: it is an effect, and
 * adding it changes no workflow command. The hard bounce the workflow makes of a nurture send's
 * permanent failure (bounceEvent, id `bounce:…`) is not one: the send suppressed the address
 * itself, or failed because it already was, and an entry removed since must stay removed.
 */
async function suppressFromEvents(ledger: LeadLedger, batch: LedgerBatch): Promise<void> {
  const event = batch.events?.find((e) => SUPPRESSING[e.type] && !WORKFLOW_BOUNCE.test(e.eventId));
  const email = (batch.lead?.state as { profile?: { email?: unknown } } | undefined)?.profile?.email;
  if (event && typeof email === 'string' && email) await ledger.suppress(email, SUPPRESSING[event.type]!, batch.leadId);
}

/**
 * Where the lead was when the ledger last recorded it, with its recent event ids (hashed as the
 * loop keeps them). A row this very run wrote was written by a failed attempt of its first
 * workflow task (a completed one would be replayed, not asked again): that attempt's state had
 * already taken steps it never sent and seen events the retry must apply, so the run resumes from
 * what the row said before it (nothing, for a new lead) and forgets that attempt's events.
 */
async function fromLedger(ledger: LeadLedger, leadId: string, runId: string): Promise<CarriedState | undefined> {
  const row = await ledger.lead(leadId);
  const ownAttempt = row?.runId === runId;
  const carried = (ownAttempt ? row?.runOrigin : row?.carried) as
    { v?: number; core?: CarriedState['core'] } | undefined;
  if (!carried?.core) return undefined;
  const ids = await ledger.recentEventIds(leadId, RECENT_EVENT_IDS, ownAttempt ? { exceptRun: runId } : {});
  // The version it was written under goes with it: the workflow checks it (src/domain/carried.ts).
  return {
    ...(carried.v !== undefined ? { v: carried.v } : {}),
    core: carried.core,
    recentEventIds: ids.map(digestEventId),
  };
}

/** The final state of the lead's latest completed run, if any (an earlier customer, dormant or disqualified run). */
async function previousRun(
  client: Client,
  workflowId: string,
  currentRunId: string,
): Promise<CarriedState | undefined> {
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
      const result = (await client.workflow.getHandle(workflowId, e.execution!.runId!).result()) as
        CarriedState | undefined;
      if (result?.core) return result;
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
  }
  return undefined;
}
