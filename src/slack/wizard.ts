/**
 * Wizard sessions and page submissions. Server-side state only: `private_metadata` carries an opaque session key
 * and the page id; the session is in a WizardStore (the database in the bot, src/slack/wizard-store.ts). Secrets
 * typed in a page are sealed (SealFn) once the page validates and are kept only as sealed ids; they are never
 * rendered back into a view.
 */
import { randomUUID } from 'node:crypto';
import type { SpecPolicy } from '../spec/safety.ts';
import type { SetupSpec } from '../spec/schema.ts';
import { PAGE_IDS, pageById, visibleFields, isChoice, type Field, type PageId } from './wizard-fields.ts';
import { keepFor, invalidKeeps } from './wizard-keep.ts';
import { MemoryWizardStore, type WizardSessionRow, type WizardStore } from './wizard-store.ts';
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
  /** the operator check said yes once (pages skip it; the job's start checks again) */
  operatorOk?: boolean;
}

/** The session as stored: the Sets as arrays; `typed` (a page being validated) is never kept. */
function sessionJson(s: WizardSession): string {
  const { typed: _typed, acknowledged, ...secrets } = s.secrets;
  return JSON.stringify({
    values: s.values, secrets: { ...secrets, acknowledged: [...(acknowledged ?? [])] }, base: s.base, prefilledFrom: s.prefilledFrom,
    policy: s.policy, operatorOk: s.operatorOk,
  });
}
function sessionOf(row: WizardSessionRow): WizardSession {
  const j = JSON.parse(row.session);
  return {
    key: row.key, channel: row.channel, user: row.user, createdAt: Date.parse(row.createdAt), values: j.values ?? {},
    secrets: { ...j.secrets, sealed: j.secrets?.sealed ?? {}, keep: j.secrets?.keep ?? {}, acknowledged: new Set(j.secrets?.acknowledged ?? []) },
    base: j.base, prefilledFrom: j.prefilledFrom, policy: j.policy, operatorOk: j.operatorOk,
  };
}

/**
 * The sessions, in a WizardStore: the database in the running bot (any replica answers any page), a Map in tests.
 * Every read returns a fresh object; a page that changed it calls `save`. Two writes to one session at once (a
 * Back click racing a submission) are not merged: the last one wins.
 */
export class WizardSessions {
  constructor(private store: WizardStore = new MemoryWizardStore(), private ttlMs = 2 * 3600_000, private now: () => number = Date.now) {}

  /**
   * A new session, not stored yet (`save` stores it). `previousBy`: who submitted `previous` (its env/file secret
   * refs are offered to that user only).
   */
  start(s: { channel: string; user: string; deployment?: string; previous?: SetupSpec; previousBy?: string; policy?: SpecPolicy }): WizardSession {
    // best effort, never waited for: an expired row is unreadable anyway
    this.store.sweep().catch(() => {});
    const p = s.previous ? prefillFromSpec(s.previous) : undefined;
    const kept = keepFor(s.user, s.previousBy, p?.keep ?? {});
    return {
      key: randomUUID(),
      channel: s.channel,
      user: s.user,
      createdAt: this.now(),
      values: p?.values ?? (s.deployment ? { 'deployment.name': s.deployment } : {}),
      secrets: { sealed: {}, ...kept, keptUrls: p?.keptUrls, acknowledged: new Set() },
      base: p?.base,
      prefilledFrom: s.previous ? s.previous.deployment.name : undefined,
      policy: s.policy,
    };
  }
  async create(s: Parameters<WizardSessions['start']>[0]): Promise<WizardSession> {
    const session = this.start(s);
    await this.save(session);
    return session;
  }
  /** stores the session as it is now; it still expires `ttlMs` after it was created */
  async save(s: WizardSession): Promise<void> {
    await this.store.put({ key: s.key, user: s.user, channel: s.channel, createdAt: new Date(s.createdAt).toISOString(), expiresAt: s.createdAt + this.ttlMs, session: sessionJson(s) });
  }
  /** undefined when missing, expired, or unreadable */
  async get(key: string): Promise<WizardSession | undefined> {
    if (!key) return undefined;
    const row = await this.store.get(key);
    if (!row) return undefined;
    try {
      return sessionOf(row);
    } catch {
      return undefined;
    }
  }
  /** removes the session and returns the sealed ids it still owns */
  async delete(key: string): Promise<string[]> {
    const row = key ? await this.store.delete(key) : undefined;
    if (!row) return [];
    try {
      return Object.values(sessionOf(row).secrets.sealed);
    } catch {
      return [];
    }
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
