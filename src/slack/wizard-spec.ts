/** Wizard values ↔ SetupSpec. Validation is the spec's own zod schema (parseSpec) and safety policy; no rules live here. */
import { checkSpecSafety, type SpecPolicy } from '../spec/safety.ts';
import { parseSpec, type SecretRef, type SetupSpec, type SpecError } from '../spec/schema.ts';
import { invalidKeeps, receiverSnapshot } from './wizard-keep.ts';
import { ALL_FIELDS, PAGES, isChoice, visibleFields, type Field, type PageId } from './wizard-fields.ts';

export type Values = Record<string, string>;
type Obj = Record<string, any>;

/** What the wizard knows about secrets: sealed ids typed in this session, reusable refs of the previous spec. */
export interface SecretState {
  sealed: Record<string, string>;
  /** env/file refs from the previous spec, kept when the field is left empty */
  keep: Record<string, SecretRef>;
  /** typed on the page being validated, not sealed yet */
  typed?: Set<string>;
  /** URLs the kept refs were sent to (wizard-keep.ts): a changed one drops them */
  keptUrls?: Record<string, string | undefined>;
  /** kept refs dropped at the start (stored by another user), with the reason */
  dropped?: Record<string, string>;
  /** optional secret fields whose dropped ref the user was told about: left empty again, they stay unset */
  acknowledged?: Set<string>;
}

function get(o: Obj | undefined, path: string): unknown {
  return path.split('.').reduce<any>((x, k) => (x == null ? undefined : x[k]), o);
}
function set(o: Obj, path: string, v: unknown): void {
  const parts = path.split('.');
  let cur = o;
  for (const p of parts.slice(0, -1)) cur = cur[p] = cur[p] && typeof cur[p] === 'object' ? cur[p] : {};
  cur[parts.at(-1)!] = v;
}
function unset(o: Obj, path: string): void {
  const parts = path.split('.');
  const parent = get(o, parts.slice(0, -1).join('.')) as Obj | undefined;
  if (parts.length === 1) delete o[parts[0]];
  else if (parent && typeof parent === 'object') delete parent[parts.at(-1)!];
}

const isStoredRef = (v: unknown) => !!v && typeof v === 'object' && 'stored' in (v as Obj);

/** drop every `{stored}` ref: sealed secrets are erased once a job wrote them, so they cannot be reused */
function withoutStoredRefs(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutStoredRefs);
  if (!v || typeof v !== 'object') return v;
  const out: Obj = {};
  for (const [k, x] of Object.entries(v)) if (!isStoredRef(x)) out[k] = withoutStoredRefs(x);
  return out;
}

/** Prefill from a previous spec: field values (never secrets), reusable env/file refs, and the spec as base. */
export function prefillFromSpec(spec: SetupSpec): { values: Values; keep: Record<string, SecretRef>; keptUrls: Record<string, string | undefined>; base: Obj } {
  const values: Values = {};
  const keep: Record<string, SecretRef> = {};
  for (const f of ALL_FIELDS) {
    if (f.kind === 'secret') {
      const ref = get(spec, f.path) as SecretRef | { create: unknown } | undefined;
      if (ref && !('stored' in ref) && !('create' in ref)) keep[f.path] = ref;
      continue;
    }
    if (f.kind === 'flags') {
      values[f.path] = (f.options ?? []).filter(([p]) => get(spec, p) === true).map(([p]) => p).join(',');
      continue;
    }
    if (f.path === 'agent.workers') {
      values[f.path] = spec.agent.workers.map((w) => `${w.name}: ${w.queues.split(',').join(', ')}`).join('\n');
      continue;
    }
    const v = get(spec, f.path);
    if (typeof v === 'string' || typeof v === 'number') values[f.path] = String(v);
  }
  if ('create' in spec.agent.token) values['agent.token.source'] = 'create';
  const base = withoutStoredRefs(structuredClone(spec)) as Obj;
  // defaulted from deployment.name by the schema: let it follow a renamed deployment
  if (base.cluster?.resourceNamePrefix === spec.deployment.name) delete base.cluster.resourceNamePrefix;
  return { values, keep, keptUrls: receiverSnapshot(spec), base };
}

function parseWorkers(text: string, base: Obj[] | undefined): Obj[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((line) => {
      const i = line.indexOf(':');
      const name = (i < 0 ? line : line.slice(0, i)).trim();
      const queues = i < 0 ? 'default' : line.slice(i + 1).trim();
      const prev = base?.find((w) => w?.name === name) ?? {};
      return { ...prev, name, queues };
    });
}

function secretRef(f: Field, s: SecretState): SecretRef | undefined {
  if (s.typed?.has(f.path)) return { stored: 'pending-seal' };
  if (s.sealed[f.path]) return { stored: s.sealed[f.path] };
  return s.keep[f.path];
}

/**
 * The agent-token choice (`agent.token.source`, a wizard-only field) into the spec's `agent.token`: a pasted
 * token's reference, or `{ create: { expiresInDays } }` (the days as a number when they are one; the schema names
 * anything else).
 */
function agentTokenChoice(raw: Obj): void {
  const tok = get(raw, 'agent.token') as Obj | undefined;
  if (!tok || typeof tok !== 'object' || !('source' in tok)) return;
  if (tok.source !== 'create') return unset(raw, 'agent.token'); // paste chosen, nothing typed: required
  const days = (tok.create as Obj | undefined)?.expiresInDays;
  set(raw, 'agent.token', { create: days === undefined ? {} : { expiresInDays: typeof days === 'string' && /^\d+$/.test(days) ? Number(days) : days } });
}

/** The raw spec input for the current values: the previous spec as base, the wizard's fields on top. */
export function buildRaw(values: Values, secrets: SecretState, base: Obj = {}): Obj {
  const raw = structuredClone(base) as Obj;
  for (const page of PAGES) {
    for (const item of page.items) {
      if (isChoice(item)) {
        const chosen = values[item.select.path] ?? item.select.initial;
        const section = item.select.path.split('.').slice(0, -1).join('.');
        if (chosen === undefined) {
          unset(raw, section);
          continue;
        }
        if (get(raw, item.select.path) !== chosen) set(raw, section, {});
      }
    }
    for (const f of visibleFields(page, values)) {
      const v = values[f.path]?.trim();
      if (f.kind === 'secret') {
        const ref = secretRef(f, secrets);
        if (ref) set(raw, f.path, ref);
        else unset(raw, f.path);
      } else if (f.kind === 'flags') {
        const on = new Set((values[f.path] ?? f.initial ?? '').split(',').filter(Boolean));
        for (const [p] of f.options ?? []) set(raw, p, on.has(p));
      } else if (f.path === 'agent.workers') {
        if (v) set(raw, f.path, parseWorkers(v, get(base, f.path) as Obj[] | undefined));
        else unset(raw, f.path);
      } else if (v) set(raw, f.path, v);
      else if (f.kind === 'select' && f.initial && !f.optional) set(raw, f.path, f.initial);
      else unset(raw, f.path);
    }
  }
  agentTokenChoice(raw);
  if (!get(raw, 'images.client.repository')) unset(raw, 'images.client');
  const server = get(raw, 'images.server') as Obj | undefined;
  if (server && server.deploy !== true && Object.keys(server).every((k) => k === 'deploy')) unset(raw, 'images.server');
  const cred = get(raw, 'dagSource.credentials') as Obj | undefined;
  if (cred && Object.keys(cred).length === 0) unset(raw, 'dagSource.credentials');
  if (raw.images && Object.keys(raw.images).length === 0) delete raw.images;
  // a kept env/file ref is not sent to a URL it was not stored with
  for (const path of Object.keys(invalidKeeps(raw, secrets))) {
    if (secrets.keep[path] && !secrets.typed?.has(path) && !secrets.sealed[path]) unset(raw, path);
  }
  const cred2 = get(raw, 'dagSource.credentials') as Obj | undefined;
  if (cred2 && Object.keys(cred2).length === 0) unset(raw, 'dagSource.credentials');
  return raw;
}

export interface Located {
  page: PageId;
  block: string;
  message: string;
}

/** Which page and input block a schema error belongs to. */
export function locate(e: SpecError, values: Values): Located {
  const matches = (f: Field) => e.path === f.path || e.path.startsWith(f.path + '.') || e.path.startsWith(f.path + '[');
  for (const page of PAGES) {
    const fields = visibleFields(page, values);
    // flags options are spec paths of their own (openLineage.enabled …)
    const f = fields.find(matches) ?? fields.find((x) => x.kind === 'flags' && x.options?.some(([p]) => e.path === p));
    if (f) return { page: page.id, block: f.path, message: messageFor(f, e) };
  }
  // a whole object is missing (nothing under it was entered yet): the first field that would create it
  for (const page of PAGES) {
    const f = visibleFields(page, values).find((x) => x.path.startsWith(e.path + '.') && !x.optional);
    if (f) return { page: page.id, block: f.path, message: f.kind === 'secret' ? SECRET_REQUIRED : 'Required.' };
  }
  let best: { page: PageId; block: string; len: number } | undefined;
  for (const page of PAGES) {
    for (const s of page.sections) {
      if ((e.path === s || e.path.startsWith(s + '.') || e.path.startsWith(s + '[')) && s.length > (best?.len ?? -1)) {
        best = { page: page.id, block: visibleFields(page, values)[0].path, len: s.length };
      }
    }
  }
  return { page: best?.page ?? 'target', block: best?.block ?? 'deployment.name', message: `${e.path}: ${e.message}` };
}

const SECRET_REQUIRED = 'Required. Paste the value; it is stored encrypted and never shown again.';

function messageFor(f: Field, e: SpecError): string {
  const where = e.path === f.path ? '' : `${e.path.slice(f.path.length).replace(/^\./, '')}: `;
  if (f.kind === 'secret' && e.path === f.path) return SECRET_REQUIRED;
  return `${where}${e.message}`;
}

export type Validation = { ok: true; spec: SetupSpec } | { ok: false; errors: Located[] };

/**
 * The schema, the safety policy (URLs without userinfo, https, namespaces, build paths: checked before anything
 * is sealed or submitted) and the kept secret refs that must be typed again (wizard-keep.ts).
 */
export function validate(values: Values, secrets: SecretState, base?: Obj, policy: SpecPolicy = {}): Validation {
  const raw = buildRaw(values, secrets, base);
  const r = parseSpec(raw);
  const errors: SpecError[] = r.ok ? [] : [...r.errors];
  for (const e of checkSpecSafety(raw, policy)) if (!errors.some((x) => x.path === e.path && x.message === e.message)) errors.push(e);
  const located = errors.map((e) => locate(e, values));
  for (const [path, reason] of Object.entries(invalidKeeps(raw, secrets))) {
    if (secrets.typed?.has(path) || secrets.sealed[path] || secrets.acknowledged?.has(path)) continue;
    const at = locate({ path, message: reason }, values);
    if (at.block !== path) continue; // the field is not shown for the current choices
    for (let i = located.length - 1; i >= 0; i--) if (located[i].block === path) located.splice(i, 1);
    located.push({ ...at, message: reason });
  }
  if (r.ok && located.length === 0) return { ok: true, spec: r.spec };
  return { ok: false, errors: located };
}

/** errors for one page, keyed by input block (Slack's `response_action: errors` shape, ≤ 2000 chars each) */
export function pageErrors(errors: Located[], page: PageId): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of errors.filter((x) => x.page === page)) {
    out[e.block] = (out[e.block] ? `${out[e.block]}; ${e.message}` : e.message).slice(0, 2000);
  }
  return out;
}
