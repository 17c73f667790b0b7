import type { WebClient } from '@slack/web-api';
import { AfterAckQueue } from './after-ack.ts';
import type { JobEngine } from '../jobs/types.ts';
import type { Logger } from '../log.ts';
import type { SpecPolicy } from '../spec/safety.ts';
import type { SetupSpec } from '../spec/schema.ts';
import type { SlackConfig } from './config.ts';
import type { Outbox, OutboxStore } from './outbox.ts';
import type { Directory } from './directory.ts';
import type { HistoryRow, StatusReport } from './status-blocks.ts';
import type { EraseFn, SealFn, WizardSessions } from './wizard.ts';
import type { WizardStore } from './wizard-store.ts';

/** A read the deps may answer now (test fakes) or later (the repository, src/store/repo.ts). */
export type Awaitable<T> = T | Promise<T>;

export interface AuditEntry {
  actor: string;
  action: string;
  jobId?: string;
  deployment?: string;
  result: string;
  details?: Record<string, unknown>;
}

export interface SlackAppDeps {
  engine: JobEngine;
  config: SlackConfig;
  logger: Logger;
  outboxStore: OutboxStore;
  /** seal a secret typed in the wizard; returns the stored id (src/store/crypto.ts sealSecret) */
  sealSecret: SealFn;
  /** erase a sealed secret the wizard dropped (replaced by a new value, or the wizard was closed) */
  eraseSecret?: EraseFn;
  /** where wizard sessions live between pages (the runtime: `repo.wizards`, any replica reads them); default in memory */
  wizardStore?: WizardStore;
  /** known deployment names (for "did you mean") */
  deployments: () => Awaitable<string[]>;
  /** `/re status` from stored state (statusReport(store, name)); default: built from engine.latestJobFor */
  status?: (deployment: string) => Awaitable<StatusReport | undefined>;
  /** the last spec submitted for a deployment: prefills the wizard (secrets never are) */
  lastSpec?: (deployment: string) => Awaitable<SetupSpec | undefined>;
  history?: (deployment: string) => Awaitable<HistoryRow[]>;
  /** records refused clicks/commands the engine does not see (appendAudit) */
  audit?: (e: AuditEntry) => void;
  pacingMs?: number;
  updateIntervalMs?: number;
  retryAfterUnitMs?: number;
  baseBackoffMs?: number;
  /** how long `/re setup` waits for the operator check before opening the modal anyway (checked again on submit) */
  operatorCheckBudgetMs?: number;
  /** spec safety policy (src/policy-env.ts): the wizard checks every page against it before sealing or submitting */
  specPolicy?: SpecPolicy;
  /** most ephemeral answers waiting in the outbox at once (default 200): past it the oldest is dropped */
  ephemeralBacklog?: number;
  /** HTTP mode: listen port override (0 = ephemeral, tests) */
  port?: number;
  /** HTTP mode: listen address (RE_BOT_HTTP_HOST); default all interfaces, as Bolt does */
  host?: string;
}

/** What every handler module gets. */
export interface SlackContext {
  deps: SlackAppDeps;
  engine: JobEngine;
  config: SlackConfig;
  logger: Logger;
  outbox: Outbox;
  client: WebClient;
  directory: Directory;
  wizards: WizardSessions;
  /** ephemeral answer through the outbox (never before an ack) */
  tell(channel: string, user: string, text: string): void;
  isOperator(user: string): Promise<boolean>;
  audit(e: AuditEntry): void;
  /**
   * approval clicks already refused, by `approvalId|user|decision`: a repeated click by the same user on the
   * same button of the same request is acked and nothing else (no decision, audit row or ephemeral); bounded,
   * oldest forgotten first (src/slack/job-actions.ts says how long each refusal is remembered)
   */
  refusedClicks: BoundedSet;
}

/**
 * Awaited right after ack(): the rest of the handler (SQLite, policy, rendering) runs once the requests
 * arriving now are read and acked, not between one request's ack and the next's (src/slack/after-ack.ts).
 */
export const afterAck = (): Promise<void> => afterAckQueue.turn();

/** one per process: every Slack app in it shares the event loop (src/slack/after-ack.ts) */
export const afterAckQueue = new AfterAckQueue();

/** A set that forgets its oldest entries past `max`, and an entry added with a lifetime once it has passed. */
export class BoundedSet {
  /** key → when it is forgotten (ms since epoch; Infinity: only when evicted) */
  private s = new Map<string, number>();
  constructor(private max = 10_000, private now: () => number = () => Date.now()) {}
  has(k: string): boolean {
    const until = this.s.get(k);
    if (until === undefined) return false;
    if (until !== Infinity && until <= this.now()) {
      this.s.delete(k);
      return false;
    }
    return true;
  }
  add(k: string, ttlMs = Infinity): void {
    this.s.delete(k);
    this.s.set(k, ttlMs === Infinity ? Infinity : this.now() + ttlMs);
    if (this.s.size > this.max) this.s.delete(this.s.keys().next().value as string);
  }
  get size(): number {
    return this.s.size;
  }
}
