/** Modal views of the setup wizard: one per page, the review page with the plan, and terminal notices. */
import { buildPlan, type Plan } from '../spec/plan.ts';
import type { SetupSpec } from '../spec/schema.ts';
import { describeRef, secretRefsOf } from '../spec/schema.ts';
import type { Block } from './blocks.ts';
import { clip, esc, ordinal } from './text.ts';
import { PAGE_IDS, pageById, visibleFields, type Field, type PageId } from './wizard-fields.ts';
import { validate, type Located } from './wizard-spec.ts';
import { metadataOf, type WizardSession } from './wizard.ts';

export const WIZARD_CALLBACK = 're_setup';
export const CHOICE_ACTION = 're_wiz_choice';
export const BACK_ACTION = 're_wiz_back';

type View = Record<string, unknown>;
const plain = (text: string, max = 2000) => ({ type: 'plain_text', text: clip(text, max) });
const mrkdwn = (block_id: string, text: string): Block => ({ type: 'section', block_id, text: { type: 'mrkdwn', text: clip(text, 3000) } });
const option = ([value, label]: [string, string]) => ({ text: plain(label, 75), value });

function element(f: Field, value: string | undefined, dispatch: boolean): Block {
  switch (f.kind) {
    case 'select': {
      const el: Block = { type: 'static_select', action_id: dispatch ? CHOICE_ACTION : 'v', options: (f.options ?? []).map(option) };
      const chosen = f.options?.find(([v]) => v === (value || f.initial));
      if (chosen) el.initial_option = option(chosen);
      el.placeholder = plain('Choose…', 150);
      return el;
    }
    case 'flags': {
      const on = new Set((value ?? f.initial ?? '').split(',').filter(Boolean));
      const el: Block = { type: 'checkboxes', action_id: 'v', options: (f.options ?? []).map(option) };
      const initial = (f.options ?? []).filter(([v]) => on.has(v)).map(option);
      if (initial.length) el.initial_options = initial;
      return el;
    }
    default: {
      const el: Block = { type: 'plain_text_input', action_id: 'v' };
      if (f.kind === 'multiline') el.multiline = true;
      if (f.placeholder) el.placeholder = plain(f.placeholder, 150);
      // secrets: never an initial value, whatever we hold
      if (f.kind !== 'secret' && value && value.length <= 3000) el.initial_value = value;
      return el;
    }
  }
}

function secretHint(f: Field, s: WizardSession): { hint: string; optional: boolean } {
  if (s.secrets.sealed[f.path]) return { hint: 'Set. Leave empty to keep it; type a new value to replace it.', optional: true };
  const dropped = s.secrets.dropped?.[f.path];
  if (dropped) return { hint: dropped, optional: !!f.optional };
  const keep = s.secrets.keep[f.path];
  if (keep) return { hint: `Uses ${describeRef(keep)} from the last setup. Leave empty to keep it.`, optional: true };
  return { hint: f.hint ?? '', optional: !!f.optional };
}

function input(f: Field, s: WizardSession, choicePaths: Set<string>): Block {
  const dispatch = choicePaths.has(f.path);
  const b: Block = { type: 'input', block_id: f.path, label: plain(f.label), element: element(f, s.values[f.path], dispatch), optional: !!f.optional };
  if (dispatch) b.dispatch_action = true;
  if (f.kind === 'secret') {
    const h = secretHint(f, s);
    b.optional = h.optional;
    if (h.hint) b.hint = plain(h.hint);
  } else if (f.hint) b.hint = plain(f.hint);
  return b;
}

function shell(s: WizardSession, page: PageId, blocks: Block[], submit: string): View {
  const n = PAGE_IDS.indexOf(page) + 1;
  if (page !== 'target') {
    blocks.push({ type: 'actions', block_id: 'wizard_nav', elements: [{ type: 'button', action_id: BACK_ACTION, text: plain('← Back', 75), value: page }] });
  }
  return {
    type: 'modal',
    callback_id: WIZARD_CALLBACK,
    private_metadata: metadataOf(s.key, page),
    notify_on_close: true,
    title: plain(`RE setup ${n}/${PAGE_IDS.length}`, 24),
    submit: plain(submit, 24),
    close: plain('Cancel', 24),
    blocks,
  };
}

function problemsBlock(problems: Located[] | undefined): Block[] {
  if (!problems?.length) return [];
  const lines = problems.slice(0, 10).map((p) => `• *${esc(p.block)}*: ${esc(p.message)}`);
  return [mrkdwn('wizard_problems', `⚠️ Please fix before the review:\n${lines.join('\n')}`)];
}

export function pageView(s: WizardSession, page: PageId, problems?: Located[]): View {
  if (page === 'review') return reviewView(s);
  const p = pageById(page)!;
  const choicePaths = new Set(p.items.flatMap((i) => ('select' in i ? [i.select.path] : [])));
  const blocks: Block[] = [mrkdwn('wizard_intro', p.intro)];
  if (page === 'target' && s.prefilledFrom) blocks.push({ type: 'context', block_id: 'wizard_prefill', elements: [{ type: 'mrkdwn', text: clip(`Prefilled from the last setup of \`${esc(s.prefilledFrom)}\`. Secrets are never prefilled.`, 3000) }] });
  blocks.push(...problemsBlock(problems));
  for (const f of visibleFields(p, s.values)) blocks.push(input(f, s, choicePaths));
  return shell(s, page, blocks, 'Next');
}

function touches(plan: Plan): string {
  const t = { namespaces: new Set<string>(), secrets: new Set<string>(), releases: new Set<string>(), images: new Set<string>(), dags: new Set<string>() };
  for (const st of plan.steps.filter((x) => x.applies)) {
    st.touches.namespaces?.forEach((n) => t.namespaces.add(n));
    st.touches.secrets?.forEach((n) => t.secrets.add(n));
    if (st.touches.release) t.releases.add(`${st.touches.release} (${st.touches.chart ?? plan.chart})`);
    st.touches.images?.forEach((n) => t.images.add(n));
    if (st.touches.testDag) t.dags.add(st.touches.testDag);
  }
  const row = (k: string, v: Set<string>) => (v.size ? `• ${k}: ${[...v].map((x) => `\`${esc(x)}\``).join(', ')}` : '');
  return [row('Namespaces', t.namespaces), row('Kubernetes Secrets', t.secrets), row('Helm release', t.releases), row('Images', t.images), row('Test DAG', t.dags)].filter(Boolean).join('\n');
}

function reviewView(s: WizardSession): View {
  const { spec, problems } = reviewSpec(s);
  if (!spec) return pageView(s, problems[0]?.page ?? 'target', problems);
  const plan = buildPlan(spec);
  const blocks: Block[] = [
    mrkdwn('review_head', `*7. Review* — nothing runs until you press *Start setup*. Helm changes also wait for approval in the thread.\n*\`${esc(plan.deployment)}\`* → release \`${esc(plan.release)}\` in namespace \`${esc(plan.namespace)}\`${spec.cluster.kubeContext ? ` (context \`${esc(spec.cluster.kubeContext)}\`)` : ''}\nChart ${esc(plan.chart)}\nValues hash \`${plan.valuesHash}\``),
    { type: 'divider', block_id: 'review_div' },
  ];
  for (const st of plan.steps) {
    const body = st.applies
      ? st.actions.slice(0, 4).map((a) => `  • ${esc(clip(a, 400))}`).join('\n') + (st.actions.length > 4 ? `\n  • … ${st.actions.length - 4} more` : '')
      : `  _skipped: ${esc(st.skipReason ?? 'not applicable')}_`;
    blocks.push(mrkdwn(`review_step_${st.id}`, `${st.applies ? '☑️' : '⏭️'} *${st.number}. ${esc(st.title)}*${st.applies && st.order !== st.number ? ` (runs ${ordinal(st.order)})` : ''}\n${body}`));
  }
  blocks.push(mrkdwn('review_touches', `*What it touches*\n${touches(plan) || '_nothing in the cluster_'}`));
  const secrets = secretRefsOf(spec).map((r) => `• ${esc(r.purpose)}: ${'stored' in r.ref ? 'set' : `set (${esc(describeRef(r.ref))})`}`);
  blocks.push(mrkdwn('review_secrets', `*Secrets*\n${secrets.join('\n')}`));
  return shell(s, 'review', blocks, 'Start setup');
}

function reviewSpec(s: WizardSession): { spec?: SetupSpec; problems: Located[] } {
  const v = validate(s.values, s.secrets, s.base, s.policy);
  if (v.ok) return { spec: v.spec, problems: [] };
  const page = PAGE_IDS.find((p) => v.errors.some((e) => e.page === p));
  return { problems: v.errors.filter((e) => e.page === page) };
}

/** a terminal notice in place of the wizard (no inputs, so no submit button) */
export function noticeView(title: string, text: string): View {
  return { type: 'modal', callback_id: 're_notice', title: plain(title, 24), close: plain('Close', 24), blocks: [mrkdwn('notice', text)] };
}
