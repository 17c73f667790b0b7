/**
 * Wizard sessions and page submissions. Server-side state only: `private_metadata` carries an opaque
 * session key and the page id. Secrets typed in a page are sealed (SealFn) once the page validates and
 * are kept here only as sealed ids; they are never rendered back into a view.
 */
import { randomUUID } from 'node:crypto';
import type { SpecPolicy } from '../spec/safety.ts';
import type { SetupSpec } from '../spec/schema.ts';
import { PAGE_IDS, pageById, visibleFields, isChoice, type Field, type PageId } from './wizard-fields.ts';
import { keepFor, invalidKeeps } from './wizard-keep.ts';
import { buildRaw, pageErrors, prefillFromSpec, validate, type Located, type SecretState, type Values } from './wizard-spec.ts';

export type SealFn = (value: string, purpose: string) => Promise<string>;
export type EraseFn = (id: string) => Promise<void>;

export interface WizardSession {
  key: string;
  channel: string;
  user: string;
  createdAt: number;
  values: Values;
  secrets: SecretState;
  /** the previous spec of this deployment (stored refs removed): fields the wizard does not show survive */
  base?: Record<string, unknown>;
  prefilledFrom?: string;
  /** spec safety policy (RE_BOT_ALLOWED_NAMESPACES …), checked on every page */
  policy?: SpecPolicy;
}

export class WizardSessions {
  private m = new Map<string, WizardSession>();
  constructor(private ttlMs = 2 * 3600_000) {}

  /** `previousBy`: who submitted `previous` (its env/file secret refs are offered to that user only) */
  create(s: { channel: string; user: string; deployment?: string; previous?: SetupSpec; previousBy?: string; policy?: SpecPolicy }): WizardSession {
    this.sweep();
    const p = s.previous ? prefillFromSpec(s.previous) : undefined;
    const kept = keepFor(s.user, s.previousBy, p?.keep ?? {});
    const session: WizardSession = {
      key: randomUUID(),
      channel: s.channel,
      user: s.user,
      createdAt: Date.now(),
      values: p?.values ?? (s.deployment ? { 'deployment.name': s.deployment } : {}),
      secrets: { sealed: {}, ...kept, keptUrls: p?.keptUrls, acknowledged: new Set() },
      base: p?.base,
      prefilledFrom: s.previous ? s.previous.deployment.name : undefined,
      policy: s.policy,
    };
    this.m.set(session.key, session);
    return session;
  }
  get(key: string): WizardSession | undefined {
    const s = this.m.get(key);
    return s && Date.now() - s.createdAt < this.ttlMs ? s : undefined;
  }
  /** removes the session and returns the sealed ids it still owns */
  delete(key: string): string[] {
    const s = this.m.get(key);
    this.m.delete(key);
    return s ? Object.values(s.secrets.sealed) : [];
  }
  private sweep(): void {
    for (const [k, s] of this.m) if (Date.now() - s.createdAt >= this.ttlMs) this.m.delete(k);
  }
}

/** `private_metadata` = `<session key>|<page id>`: nothing secret, far below the 3000-char limit */
export const metadataOf = (key: string, page: PageId) => `${key}|${page}`;
export function parseMetadata(m: string): { key: string; page: PageId } {
  const [key = '', page = 'target'] = m.split('|');
  return { key, page: (PAGE_IDS as readonly string[]).includes(page) ? (page as PageId) : 'target' };
}

type StateValues = Record<string, Record<string, any>>;

function read(state: StateValues, f: Field): string | undefined {
  const el = Object.values(state[f.path] ?? {})[0];
  if (!el) return undefined;
  if (f.kind === 'select') return el.selected_option?.value ?? '';
  if (f.kind === 'flags') return (el.selected_options ?? []).map((o: { value: string }) => o.value).join(',');
  return typeof el.value === 'string' ? el.value : '';
}

/** Non-secret values of a page as the user left them, plus typed secrets (kept apart, never stored plain). */
export function readPage(session: WizardSession, page: PageId, state: StateValues): { values: Values; typed: Map<string, string> } {
  const p = pageById(page);
  const values: Values = { ...session.values };
  const typed = new Map<string, string>();
  if (!p) return { values, typed };
  // the choices first: they decide which fields are on the page
  for (const item of p.items) if (isChoice(item)) {
    const v = read(state, item.select);
    if (v !== undefined && v !== '') values[item.select.path] = v;
  }
  for (const f of visibleFields(p, values)) {
    const v = read(state, f);
    if (v === undefined) continue;
    if (f.kind === 'secret') {
      if (v.trim()) typed.set(f.path, v.trim());
    } else values[f.path] = v;
  }
  return { values, typed };
}

export type PageOutcome =
  | { kind: 'errors'; errors: Record<string, string> }
  | { kind: 'page'; page: PageId; problems?: Located[] }
  | { kind: 'done'; spec: SetupSpec };

const next = (page: PageId): PageId => PAGE_IDS[Math.min(PAGE_IDS.indexOf(page) + 1, PAGE_IDS.length - 1)];
export const previous = (page: PageId): PageId => PAGE_IDS[Math.max(PAGE_IDS.indexOf(page) - 1, 0)];

/** where to go when the whole spec is not valid yet: the first page with a problem */
function firstProblem(errors: Located[]): PageOutcome {
  const page = PAGE_IDS.find((p) => errors.some((e) => e.page === p)) ?? 'target';
  return { kind: 'page', page, problems: errors.filter((e) => e.page === page) };
}

/**
 * A page was submitted: validate it with the spec schema (errors of this page only), then seal its
 * secrets, store its values and move on. The review page submits the whole spec.
 */
export async function submitPage(session: WizardSession, page: PageId, state: StateValues, seal: SealFn, erase?: EraseFn): Promise<PageOutcome> {
  if (page === 'review') {
    const v = validate(session.values, session.secrets, session.base, session.policy);
    return v.ok ? { kind: 'done', spec: v.spec } : firstProblem(v.errors);
  }
  const { values, typed } = readPage(session, page, state);
  const secrets = { ...session.secrets, typed: new Set(typed.keys()) };
  const v = validate(values, secrets, session.base, session.policy);
  const errors = v.ok ? {} : pageErrors(v.errors, page);
  if (Object.keys(errors).length) {
    // an optional secret (Git credentials) whose kept ref was dropped is asked for once; left empty again, it stays unset
    const dropped = invalidKeeps(buildRaw(values, secrets, session.base), secrets);
    for (const f of visibleFields(pageById(page)!, values)) if (f.kind === 'secret' && f.optional && errors[f.path] && dropped[f.path]) session.secrets.acknowledged?.add(f.path);
    return { kind: 'errors', errors };
  }
  session.values = values;
  for (const [path, value] of typed) {
    const old = session.secrets.sealed[path];
    session.secrets.sealed[path] = await seal(value, path);
    if (old) await erase?.(old);
  }
  const to = next(page);
  if (to === 'review' && !v.ok) return firstProblem(v.errors);
  return { kind: 'page', page: to };
}
