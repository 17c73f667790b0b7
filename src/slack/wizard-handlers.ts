/** Bolt handlers of the setup wizard: open, page submissions, provider choices, back, close. */
import type { Routes } from './router.ts';
import { DeploymentLockedError } from '../jobs/types.ts';
import { errorMessage } from '../redact.ts';
import type { SetupSpec } from '../spec/schema.ts';
import { afterAck, type Awaitable, type SlackContext } from './context.ts';
import { esc, when } from './text.ts';
import { BACK_ACTION, CHOICE_ACTION, WIZARD_CALLBACK, noticeView, pageView } from './wizard-view.ts';
import { parseMetadata, previous, readPage, submitPage, type WizardSession } from './wizard.ts';

const NOT_OPERATOR = 'You are not allowed to start setups (RE_BOT_OPERATORS).';

/** `/re setup [deployment]`, after the ack: the trigger id is valid for 3 s and only once */
export async function openWizard(ctx: SlackContext, o: { triggerId: string; channel: string; user: string; deployment?: string }): Promise<void> {
  const previousSpec = o.deployment ? await safeRead(() => ctx.deps.lastSpec?.(o.deployment!)) : undefined;
  // who submitted that spec (the latest job): only they may reuse its env/file secret refs
  const previousBy = previousSpec ? await safeRead(async () => (await ctx.engine.latestJobFor(o.deployment!))?.requestedBy) : undefined;
  const session = ctx.wizards.start({ channel: o.channel, user: o.user, deployment: o.deployment, previous: previousSpec, previousBy, policy: ctx.deps.specPolicy });
  // a cold user-group cache must not eat the trigger window: past the budget, open and re-check on submit
  const budget = ctx.deps.operatorCheckBudgetMs ?? 1200;
  const check = operatorCheck(ctx, session);
  const allowed = await Promise.race([check, new Promise<'pending'>((r) => setTimeout(() => r('pending'), budget).unref())]);
  if (allowed !== true && allowed !== 'pending') {
    forgetCheck(ctx, session.key);
    return ctx.tell(o.channel, o.user, allowed === false ? NOT_OPERATOR : lookupFailed(allowed));
  }
  if (allowed === true) session.operatorOk = true;
  const failed = (err: unknown, what: string) => {
    forgetCheck(ctx, session.key);
    ctx.logger.error({ err: errorMessage(err) }, what);
    ctx.tell(o.channel, o.user, `Could not open the setup wizard: ${esc(errorMessage(err))}. Run \`/re setup\` again.`);
  };
  try {
    // stored before the modal opens: its first page may reach another replica
    await ctx.wizards.save(session);
  } catch (err) {
    return failed(err, 'could not store the wizard session');
  }
  try {
    await ctx.client.views.open({ trigger_id: o.triggerId, view: pageView(session, 'target') as any });
  } catch (err) {
    await ctx.wizards.delete(session.key).catch(() => []);
    failed(err, 'views.open failed');
  }
}

type Check = Promise<boolean | { failed: string }>;
/** per app: session key → the operator check, oldest dropped past this many (a page of a dropped one asks again) */
const MAX_CHECKS = 1000;
const operatorChecks = new WeakMap<SlackContext, Map<string, Check>>();

/**
 * Whether the user may start setups, once per wizard session: true, false, or the failed lookup (fail closed —
 * nothing is sealed until this is true). A slow lookup opens the wizard; its first submission waits for it. A yes
 * is kept in the session (`operatorOk`), so a page on another replica need not ask Slack again.
 */
function operatorCheck(ctx: SlackContext, s: WizardSession): Check {
  if (s.operatorOk) return Promise.resolve(true);
  let checks = operatorChecks.get(ctx);
  if (!checks) operatorChecks.set(ctx, (checks = new Map()));
  let p = checks.get(s.key);
  if (!p) {
    p = ctx.isOperator(s.user).catch((err) => ({ failed: errorMessage(err) }));
    checks.set(s.key, p);
    if (checks.size > MAX_CHECKS) checks.delete(checks.keys().next().value as string);
  }
  return p;
}
const forgetCheck = (ctx: SlackContext, key: string) => void operatorChecks.get(ctx)?.delete(key);
const lookupFailed = (r: { failed: string }) =>
  `Setup not started: could not check that you may start setups (RE_BOT_OPERATORS) — ${esc(r.failed)}. Nothing was saved; run \`/re setup\` again in a moment.`;

/** A prefill read that fails opens an empty wizard rather than none. */
async function safeRead<T>(fn: () => Awaitable<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch {
    return undefined;
  }
}

/** best effort: a secret left behind is erased by the TTL sweep (src/store/crypto.ts) */
async function eraseAll(ctx: SlackContext, ids: string[]): Promise<void> {
  for (const id of ids) {
    try {
      await ctx.deps.eraseSecret?.(id);
    } catch {
      // the sweep erases it
    }
  }
}

async function startJob(ctx: SlackContext, s: WizardSession, spec: SetupSpec, user: string, teamId?: string): Promise<void> {
  const sealed = Object.values(s.secrets.sealed);
  let allowed: boolean;
  try {
    allowed = await ctx.isOperator(user);
  } catch (err) {
    await eraseAll(ctx, sealed);
    return ctx.tell(s.channel, user, `Setup not started: ${esc(errorMessage(err))}`);
  }
  if (!allowed) {
    await eraseAll(ctx, sealed);
    return ctx.tell(s.channel, user, NOT_OPERATOR);
  }
  // a slash command in someone else's DM: the bot cannot post there, so the thread goes to our DM
  const channel = s.channel.startsWith('D') ? ((await ctx.directory.dmWith(user)) ?? s.channel) : s.channel;
  try {
    const display = await ctx.directory.displayName(user);
    await ctx.engine.submit({ spec, requestedBy: { id: user, display }, origin: { kind: 'slack', channel, ...(teamId ? { teamId } : {}) } });
  } catch (err) {
    await eraseAll(ctx, sealed);
    if (err instanceof DeploymentLockedError) {
      const h = err.holder;
      return ctx.tell(s.channel, user, `🔒 \`${esc(err.deployment)}\` is locked by job \`${esc(h.jobId)}\` (requested by <@${h.requestedBy}>, ${h.state.replace(/_/g, ' ')} since ${when(h.since)}). See \`/re status ${esc(err.deployment)}\`; nothing was started and your secrets were discarded. Wait for it, or release it with \`/re cancel ${esc(err.deployment)}\`; a job waiting for approval also expires after ${ctx.config.approvalTtlMs / 3600_000} h (RE_BOT_APPROVAL_TTL_HOURS).`);
    }
    ctx.logger.error({ err: errorMessage(err) }, 'job submission failed');
    ctx.tell(s.channel, user, `Setup not started: ${esc(errorMessage(err))}`);
  }
}

export function registerWizard(app: Routes, ctx: SlackContext): void {
  const seal = (value: string, purpose: string) => ctx.deps.sealSecret(value, purpose);
  const erase = (id: string) => eraseAll(ctx, [id]);

  const failedNotice = (err: unknown) => noticeView('RE setup', `Something went wrong: ${esc(errorMessage(err))}. Run \`/re setup\` again.`) as any;

  app.view(WIZARD_CALLBACK, async ({ ack, view, body }) => {
    const { key, page } = parseMetadata(view.private_metadata);
    let s: WizardSession | undefined;
    try {
      s = await ctx.wizards.get(key);
    } catch (err) {
      ctx.logger.error({ err: errorMessage(err), page }, 'could not read the wizard session');
      return ack({ response_action: 'update', view: failedNotice(err) });
    }
    if (!s || s.user !== body.user.id) {
      return ack({ response_action: 'update', view: noticeView('RE setup', 'This wizard session expired or the bot restarted. Run `/re setup` again.') as any });
    }
    // fail closed before anything typed here is sealed: a non-operator, or a failed user-group lookup, ends the wizard
    const allowed = await Promise.race([operatorCheck(ctx, s), new Promise<'pending'>((r) => setTimeout(() => r('pending'), 2000).unref())]);
    if (allowed !== true) {
      const why = allowed === false ? NOT_OPERATOR : lookupFailed(allowed === 'pending' ? { failed: 'Slack did not answer in time' } : allowed);
      await ack({ response_action: 'update', view: noticeView('RE setup', why) as any });
      forgetCheck(ctx, key);
      return eraseAll(ctx, await ctx.wizards.delete(key).catch(() => Object.values(s.secrets.sealed)));
    }
    s.operatorOk = true;
    let outcome: Awaited<ReturnType<typeof submitPage>>;
    const sealedBefore = new Set(Object.values(s.secrets.sealed));
    try {
      outcome = await submitPage(s, page, view.state.values as any, seal, erase);
    } catch (err) {
      ctx.logger.error({ err: errorMessage(err), page }, 'wizard page failed');
      return ack({ response_action: 'update', view: failedNotice(err) });
    }
    // the next page may reach another replica: one write, before the ack shows it
    if (outcome.kind !== 'done') try {
      await ctx.wizards.save(s);
    } catch (err) {
      ctx.logger.error({ err: errorMessage(err), page }, 'could not store the wizard page');
      await ack({ response_action: 'update', view: failedNotice(err) });
      // sealed on this page, referenced by nothing stored
      return eraseAll(ctx, Object.values(s.secrets.sealed).filter((id) => !sealedBefore.has(id)));
    }
    if (outcome.kind === 'errors') return ack({ response_action: 'errors', errors: outcome.errors });
    if (outcome.kind === 'page') return ack({ response_action: 'update', view: pageView(s, outcome.page, outcome.problems) as any });
    await ack();
    await afterAck();
    forgetCheck(ctx, key);
    try {
      await ctx.wizards.delete(key); // the sealed secrets now belong to the job
    } catch (err) {
      ctx.logger.warn({ err: errorMessage(err) }, 'could not delete the wizard session (it expires)');
    }
    await startJob(ctx, s, outcome.spec, body.user.id, body.team?.id);
  });

  app.view({ callback_id: WIZARD_CALLBACK, type: 'view_closed' }, async ({ ack, view }) => {
    await ack();
    await afterAck();
    const { key } = parseMetadata(view.private_metadata);
    forgetCheck(ctx, key);
    try {
      await eraseAll(ctx, await ctx.wizards.delete(key));
    } catch (err) {
      // its sealed secrets are erased by the sweep (src/store/crypto.ts)
      ctx.logger.warn({ err: errorMessage(err) }, 'could not delete the closed wizard session');
    }
  });

  // a provider choice (dispatch_action) or Back: keep what was typed (never secrets), re-render with views.update
  const rerender = async (body: any, to: (page: ReturnType<typeof parseMetadata>['page']) => ReturnType<typeof parseMetadata>['page'], choice?: { block: string; value: string }) => {
    const v = body.view;
    if (!v) return;
    const { key, page } = parseMetadata(v.private_metadata ?? '');
    let s: WizardSession | undefined;
    try {
      s = await ctx.wizards.get(key);
      if (!s || s.user !== body.user?.id) return;
      const { values } = readPage(s, page, v.state?.values ?? {});
      if (choice) values[choice.block] = choice.value;
      s.values = values;
      // before the view changes: a submission of the re-rendered page must find these values
      await ctx.wizards.save(s);
    } catch (err) {
      ctx.logger.error({ err: errorMessage(err) }, 'could not keep the wizard page');
      return;
    }
    try {
      await ctx.client.views.update({ view_id: v.id, hash: v.hash, view: pageView(s, to(page)) as any });
    } catch (err) {
      // hash_conflict: the user already moved on; the next submission carries the truth
      ctx.logger.warn({ err: errorMessage(err) }, 'wizard views.update failed');
    }
  };
  app.action(CHOICE_ACTION, async ({ ack, body, action }) => {
    await ack();
    const a = action as any;
    await rerender(body, (p) => p, { block: a.block_id, value: a.selected_option?.value ?? '' });
  });
  app.action(BACK_ACTION, async ({ ack, body }) => {
    await ack();
    await rerender(body, previous);
  });
}
