import { randomUUID } from 'node:crypto';
import { parseSpec, type SpecError } from '../spec/schema.ts';

type Block = Record<string, any>;

/** Modal field → spec path. `secret` fields are sealed immediately and never echoed back. */
interface Field {
  block: string;
  path: string;
  label: string;
  hint?: string;
  optional?: boolean;
  secret?: boolean;
  placeholder?: string;
}

export const WIZARD_FIELDS: Field[] = [
  { block: 'dep_name', path: 'deployment.name', label: 'Deployment short name', hint: 'used by /re status <name>' },
  { block: 'dep_id', path: 'deployment.id', label: 'Astro deployment id' },
  { block: 'org_id', path: 'deployment.organizationId', label: 'Astro organization id' },
  { block: 'ws_id', path: 'deployment.workspaceId', label: 'Astro workspace id' },
  { block: 'dep_ns', path: 'deployment.namespace', label: 'Astro deployment namespace' },
  { block: 'api_url', path: 'deployment.apiUrl', label: 'Deployment API URL (astroDeploymentAPIURL)' },
  { block: 'airflow_url', path: 'deployment.airflowApiUrl', label: 'Airflow API URL' },
  { block: 'api_token', path: 'deployment.apiToken', label: 'Deployment API token', secret: true, hint: 'stored encrypted; never shown again' },
  { block: 'kube_context', path: 'cluster.kubeContext', label: 'Kube context', optional: true },
  { block: 'namespace', path: 'cluster.namespace', label: 'Agent namespace' },
  { block: 'release', path: 'cluster.release', label: 'Helm release name', optional: true, placeholder: 'astro-agent' },
  { block: 'chart_version', path: 'cluster.chart.version', label: 'Chart version', placeholder: '2.3.3' },
  { block: 'agent_image', path: 'agent.image', label: 'Agent image (repository:tag)' },
  { block: 'agent_token', path: 'agent.token', label: 'Agent token', secret: true, hint: 'stored encrypted; never shown again' },
];

export interface WizardState {
  channel: string;
  user: string;
  deployment?: string;
}

/** Server-side wizard state, keyed by the opaque key kept in private_metadata. */
export class WizardSessions {
  private m = new Map<string, WizardState>();
  create(s: WizardState): string {
    const key = randomUUID();
    this.m.set(key, s);
    return key;
  }
  get(key: string): WizardState | undefined {
    return this.m.get(key);
  }
  delete(key: string): void {
    this.m.delete(key);
  }
}

export function wizardView(key: string, prefill: Record<string, string> = {}): Block {
  const blocks: Block[] = [
    { type: 'section', block_id: 'intro', text: { type: 'mrkdwn', text: 'Set up Remote Execution agents. Tokens are sealed as soon as you submit and are never displayed.' } },
  ];
  for (const f of WIZARD_FIELDS) {
    const element: Block = { type: 'plain_text_input', action_id: 'v' };
    if (f.placeholder) element.placeholder = { type: 'plain_text', text: f.placeholder };
    if (!f.secret && prefill[f.path]) element.initial_value = prefill[f.path];
    const b: Block = { type: 'input', block_id: f.block, label: { type: 'plain_text', text: f.label }, element, optional: !!f.optional };
    if (f.hint) b.hint = { type: 'plain_text', text: f.hint };
    blocks.push(b);
  }
  blocks.push({
    type: 'input',
    block_id: 'xcom_type',
    label: { type: 'plain_text', text: 'XCom backend' },
    element: {
      type: 'static_select',
      action_id: 'v',
      initial_option: { text: { type: 'plain_text', text: 'none' }, value: 'none' },
      options: ['none', 's3', 'gcs'].map((v) => ({ text: { type: 'plain_text', text: v }, value: v })),
    },
  });
  blocks.push({ type: 'input', block_id: 'xcom_bucket', optional: true, label: { type: 'plain_text', text: 'XCom bucket (s3/gcs)' }, element: { type: 'plain_text_input', action_id: 'v' } });
  return {
    type: 'modal',
    callback_id: 're_setup',
    private_metadata: key,
    title: { type: 'plain_text', text: 'RE setup' },
    submit: { type: 'plain_text', text: 'Review & submit' },
    close: { type: 'plain_text', text: 'Cancel' },
    blocks,
  };
}

function set(obj: Record<string, any>, path: string, value: unknown): void {
  const parts = path.split('.');
  let o = obj;
  for (const p of parts.slice(0, -1)) o = o[p] ??= {};
  o[parts.at(-1)!] = value;
}

export type SealFn = (value: string, purpose: string) => string;

export type WizardResult = { ok: true; spec: import('../spec/schema.ts').SetupSpec } | { ok: false; errors: Record<string, string> };

/** Builds a spec from submitted values: secrets are sealed (replaced by `{stored: id}`) before validation. */
export function specFromSubmission(values: Record<string, Record<string, any>>, seal: SealFn): WizardResult {
  const raw: Record<string, any> = {};
  const val = (block: string): string | undefined => {
    const v = values[block]?.v;
    const s = v?.value ?? v?.selected_option?.value;
    return typeof s === 'string' && s.trim() !== '' ? s.trim() : undefined;
  };
  for (const f of WIZARD_FIELDS) {
    const v = val(f.block);
    if (v === undefined) continue;
    set(raw, f.path, f.secret ? { stored: seal(v, f.path) } : v);
  }
  const xtype = val('xcom_type') ?? 'none';
  raw.xcomBackend = xtype === 'none' ? { type: 'none' } : { type: xtype, bucket: val('xcom_bucket') };
  const r = parseSpec(raw);
  if (r.ok) return { ok: true, spec: r.spec };
  return { ok: false, errors: errorsToBlocks(r.errors) };
}

/** Maps spec field paths onto the input block that edits them; unmatched errors go to the closest block. */
export function errorsToBlocks(errors: SpecError[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of errors) {
    let block = WIZARD_FIELDS.find((f) => e.path === f.path || e.path.startsWith(f.path + '.'))?.block;
    if (!block && e.path.startsWith('xcomBackend')) block = e.path.includes('bucket') ? 'xcom_bucket' : 'xcom_type';
    if (!block && e.path.startsWith('cluster.chart')) block = 'chart_version';
    block ??= WIZARD_FIELDS.find((f) => e.path.startsWith(f.path.split('.')[0]))?.block ?? 'dep_name';
    const msg = e.message.slice(0, 1900);
    out[block] = out[block] ? `${out[block]}; ${msg}`.slice(0, 2000) : msg;
  }
  return out;
}
