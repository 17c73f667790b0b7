import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { validateBlocks, validateView } from './limits.ts';

type Json = Record<string, any>;

export interface RecordedCall {
  method: string;
  args: Json;
  at: number;
  status: number;
  response: Json;
}

export interface StoredMessage {
  channel: string;
  ts: string;
  threadTs?: string;
  text?: string;
  blocks?: unknown[];
  metadata?: unknown;
  replyBroadcast?: boolean;
  updates: number;
}

interface ViewRecord {
  id: string;
  user: string;
  view: Json;
  hash: string;
  rootId: string;
  previousId: string | null;
}

interface Fault {
  method: string | '*';
  kind: 429 | 500 | 503;
  /** probability per call, or a fixed number of calls */
  fraction?: number;
  count?: number;
  retryAfterSec?: number;
  /** for 429: still apply the write before refusing (Slack sometimes posts and rate-limits) */
}

export interface EmulatorOptions {
  botUserId?: string;
  teamId?: string;
  users?: Record<string, { name: string; realName?: string }>;
  usergroups?: Record<string, string[]>;
  triggerTtlMs?: number;
  random?: () => number;
  /**
   * the bot token's scopes: when given, the methods that need one the token lacks answer `missing_scope` (today
   * conversations.history / conversations.replies: channels:history, groups:history for G… ids, im:history for D…)
   */
  scopes?: string[];
}

export class SlackEmulator {
  readonly calls: RecordedCall[] = [];
  readonly messages = new Map<string, StoredMessage>();
  readonly ephemerals: Array<{ channel: string; user: string; text?: string; blocks?: unknown[] }> = [];
  readonly views = new Map<string, ViewRecord>();
  readonly stacks = new Map<string, string[]>();
  readonly posts = new Map<string, number[]>();
  readonly socketFrames: Json[] = [];
  private triggers = new Map<string, { issuedAt: number; used: boolean; user: string }>();
  private faults: Fault[] = [];
  /** the last message ts handed out, in microseconds (ts are wall-clock seconds.micros, strictly increasing) */
  private lastTsMicros = 0;
  /** see EmulatorOptions.scopes; undefined: every scope granted */
  scopes?: string[];
  private viewSeq = 0;
  private http?: Server;
  private wss?: WebSocketServer;
  private sockets = new Set<WebSocket>();
  private pendingAcks = new Map<string, (payload: Json) => void>();
  /** messages posted to a response_url of this emulator (responseUrl()), by its id */
  readonly responses = new Map<string, Json[]>();
  private responseWaiters = new Map<string, Array<(m: Json) => void>>();
  private responseSeq = 0;
  url = '';
  readonly botUserId: string;
  readonly teamId: string;
  readonly users: Record<string, { name: string; realName?: string }>;
  readonly usergroups: Record<string, string[]>;
  private triggerTtlMs: number;
  private random: () => number;

  constructor(opts: EmulatorOptions = {}) {
    this.botUserId = opts.botUserId ?? 'U0BOTUSER1';
    this.teamId = opts.teamId ?? 'T0123ABCD';
    this.users = opts.users ?? {};
    this.usergroups = opts.usergroups ?? {};
    this.triggerTtlMs = opts.triggerTtlMs ?? 3000;
    this.random = opts.random ?? Math.random;
    this.scopes = opts.scopes;
  }

  get apiUrl(): string {
    return `${this.url}/api/`;
  }

  async start(): Promise<this> {
    this.http = createServer((req, res) => void this.handle(req, res));
    this.wss = new WebSocketServer({ noServer: true });
    this.http.on('upgrade', (req, socket, head) => {
      this.wss!.handleUpgrade(req, socket, head, (ws) => this.onSocket(ws));
    });
    await new Promise<void>((r) => this.http!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.http.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.terminate();
    this.wss?.close();
    await new Promise<void>((r) => (this.http ? this.http.close(() => r()) : r()));
    this.http?.closeAllConnections?.();
  }

  /** inject failures: e.g. `{method:'chat.postMessage', kind:429, fraction:0.2}` */
  injectFault(f: Fault): void {
    this.faults.push({ ...f });
  }
  clearFaults(): void {
    this.faults = [];
  }

  issueTrigger(user: string): string {
    const id = `${Date.now()}.${Math.floor(this.random() * 1e13)}.${randomUUID().replace(/-/g, '')}`;
    this.triggers.set(id, { issuedAt: Date.now(), used: false, user });
    return id;
  }

  /**
   * a response_url for a slash command or interaction payload: what the app posts to it lands in `responses`;
   * with `to` (the payload's channel and user), an ephemeral answer also lands in `ephemerals`, as Slack shows it
   */
  responseUrl(id = `r${++this.responseSeq}`, to?: { channel: string; user: string }): string {
    if (to) this.responseTargets.set(id, to);
    return `${this.url}/response/${encodeURIComponent(id)}`;
  }
  private responseTargets = new Map<string, { channel: string; user: string }>();
  /** the first message posted to responseUrl(id), waiting for it up to timeoutMs */
  waitResponse(id: string, timeoutMs = 5000): Promise<Json | undefined> {
    const got = this.responses.get(id)?.[0];
    if (got) return Promise.resolve(got);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(undefined), timeoutMs);
      const list = this.responseWaiters.get(id) ?? [];
      list.push((m) => {
        clearTimeout(t);
        resolve(m);
      });
      this.responseWaiters.set(id, list);
    });
  }

  callsTo(method: string): RecordedCall[] {
    return this.calls.filter((c) => c.method === method);
  }

  /** top-level messages (thread parents) in a channel */
  parents(channel: string): StoredMessage[] {
    return [...this.messages.values()].filter((m) => m.channel === channel && !m.threadTs);
  }
  replies(channel: string, threadTs: string): StoredMessage[] {
    return [...this.messages.values()].filter((m) => m.channel === channel && m.threadTs === threadTs);
  }

  /** every payload the bot sent to Slack, as text (for leak checks) */
  allPayloadText(): string {
    return JSON.stringify(this.calls.map((c) => c.args)) + JSON.stringify(this.socketFrames);
  }

  private nextTs(): string {
    this.lastTsMicros = Math.max(this.lastTsMicros + 1, Date.now() * 1000);
    return `${Math.floor(this.lastTsMicros / 1_000_000)}.${String(this.lastTsMicros % 1_000_000).padStart(6, '0')}`;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname.startsWith('/response/')) return this.onResponse(decodeURIComponent(url.pathname.slice('/response/'.length)), raw, res);
    const method = url.pathname.replace(/^\/api\//, '');
    let args: Json = {};
    try {
      const ct = String(req.headers['content-type'] ?? '');
      if (ct.startsWith('application/json')) args = raw ? JSON.parse(raw) : {};
      else {
        for (const [k, v] of new URLSearchParams(raw)) {
          args[k] = ['blocks', 'view', 'metadata', 'attachments'].includes(k) ? JSON.parse(v) : v;
        }
      }
    } catch {
      return this.reply(res, method, args, 200, { ok: false, error: 'invalid_form_data' });
    }
    const auth = String(req.headers.authorization ?? '');
    if (!auth.startsWith('Bearer ') && !args.token) return this.reply(res, method, args, 200, { ok: false, error: 'not_authed' });

    const fault = this.pickFault(method);
    if (fault) {
      if (fault.kind === 429) {
        res.setHeader('Retry-After', String(fault.retryAfterSec ?? 1));
        return this.reply(res, method, args, 429, { ok: false, error: 'ratelimited' });
      }
      return this.reply(res, method, args, fault.kind, { ok: false, error: 'internal_error' });
    }
    const out = this.dispatch(method, args, auth.slice(7));
    this.reply(res, method, args, 200, out);
  }

  private onResponse(id: string, raw: string, res: ServerResponse): void {
    let m: Json;
    try {
      m = JSON.parse(raw);
    } catch {
      res.writeHead(400).end('invalid_payload');
      return;
    }
    this.calls.push({ method: 'response_url', args: m, at: Date.now(), status: 200, response: { ok: true } });
    // Slack's default response_type is ephemeral; replace_original/delete_original change the source message instead
    const to = this.responseTargets.get(id);
    if (to && m.response_type !== 'in_channel' && !m.replace_original && !m.delete_original) this.ephemerals.push({ channel: to.channel, user: to.user, text: m.text as string | undefined, blocks: m.blocks as unknown[] | undefined });
    const list = this.responses.get(id) ?? [];
    list.push(m);
    this.responses.set(id, list);
    for (const w of this.responseWaiters.get(id) ?? []) w(m);
    this.responseWaiters.delete(id);
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
  }

  private pickFault(method: string): Fault | undefined {
    for (const f of this.faults) {
      if (f.method !== '*' && f.method !== method) continue;
      if (f.count !== undefined) {
        if (f.count > 0) {
          f.count -= 1;
          return f;
        }
        continue;
      }
      if (f.fraction !== undefined && this.random() < f.fraction) return f;
    }
    return undefined;
  }

  private reply(res: ServerResponse, method: string, args: Json, status: number, body: Json): void {
    this.calls.push({ method, args, at: Date.now(), status, response: body });
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  private dispatch(method: string, a: Json, token: string): Json {
    switch (method) {
      case 'auth.test':
        return { ok: true, url: 'https://acme.slack.com/', team: 'acme', user: 're-bot', team_id: this.teamId, user_id: this.botUserId, bot_id: 'B0BOT00001' };
      case 'apps.connections.open':
        if (!token.startsWith('xapp-')) return { ok: false, error: 'invalid_auth' };
        return { ok: true, url: `${this.url.replace('http', 'ws')}/link/?ticket=${randomUUID()}` };
      case 'chat.postMessage':
        return this.postMessage(a);
      case 'chat.update':
        return this.updateMessage(a);
      case 'chat.postEphemeral': {
        if (!a.channel || !a.user) return { ok: false, error: 'invalid_arguments' };
        const errs = validateBlocks(a.blocks, 50);
        if (errs.length) return { ok: false, error: 'invalid_blocks', errors: errs };
        this.ephemerals.push({ channel: a.channel, user: a.user, text: a.text, blocks: a.blocks });
        return { ok: true, message_ts: this.nextTs() };
      }
      case 'views.open':
      case 'views.push':
        return this.openView(method, a);
      case 'views.update':
        return this.updateView(a);
      case 'users.info': {
        const u = this.users[a.user];
        return u ? { ok: true, user: { id: a.user, name: u.name, real_name: u.realName ?? u.name, team_id: this.teamId } } : { ok: false, error: 'user_not_found' };
      }
      case 'usergroups.users.list': {
        const g = this.usergroups[a.usergroup];
        return g ? { ok: true, users: g } : { ok: false, error: 'no_such_subteam' };
      }
      case 'conversations.history':
      case 'conversations.replies':
        return this.readMessages(method, a);
      case 'conversations.open':
        return { ok: true, channel: { id: `D${String(a.users ?? 'X').replace(/^U/, '')}` } };
      default:
        return { ok: false, error: 'unknown_method' };
    }
  }

  private postMessage(a: Json): Json {
    if (!a.channel) return { ok: false, error: 'channel_not_found' };
    if (!a.text && !a.blocks) return { ok: false, error: 'no_text' };
    const errs = validateBlocks(a.blocks, 50);
    if (errs.length) return { ok: false, error: 'invalid_blocks', errors: errs };
    if (a.thread_ts && !this.messages.has(`${a.channel}/${a.thread_ts}`)) return { ok: false, error: 'thread_not_found' };
    const ts = this.nextTs();
    const msg: StoredMessage = {
      channel: a.channel,
      ts,
      threadTs: a.thread_ts,
      text: a.text,
      blocks: a.blocks,
      metadata: a.metadata,
      replyBroadcast: a.reply_broadcast === true || a.reply_broadcast === 'true',
      updates: 0,
    };
    this.messages.set(`${a.channel}/${ts}`, msg);
    const list = this.posts.get(a.channel) ?? [];
    list.push(Date.now());
    this.posts.set(a.channel, list);
    return { ok: true, channel: a.channel, ts, message: { text: a.text, blocks: a.blocks, ts, bot_id: 'B0BOT00001' } };
  }

  /** the history scope a channel id needs (the emulator's convention: D… a DM, G… a private channel, else public) */
  private historyScope(channel: string): string {
    return channel.startsWith('D') ? 'im:history' : channel.startsWith('G') ? 'groups:history' : 'channels:history';
  }

  /**
   * conversations.history (a channel's top-level messages and broadcast replies, newest first) and
   * conversations.replies (the thread's parent, then its replies oldest first); `oldest`/`latest` (exclusive unless
   * `inclusive`), `limit` (history: default 100, at most 999; replies: default 1000), `cursor`; message metadata only
   * with `include_all_metadata`.
   */
  private readMessages(method: string, a: Json): Json {
    if (!a.channel) return { ok: false, error: 'channel_not_found' };
    const needed = this.historyScope(String(a.channel));
    if (this.scopes && !this.scopes.includes(needed)) return { ok: false, error: 'missing_scope', needed, provided: this.scopes.join(',') };
    const truthy = (v: unknown) => v === true || v === 'true' || v === '1' || v === 1;
    const inclusive = truthy(a.inclusive);
    const num = (ts: string) => Number(ts);
    const inRange = (m: StoredMessage) =>
      (a.oldest === undefined || (inclusive ? num(m.ts) >= num(a.oldest) : num(m.ts) > num(a.oldest))) &&
      (a.latest === undefined || (inclusive ? num(m.ts) <= num(a.latest) : num(m.ts) < num(a.latest)));
    const inChannel = [...this.messages.values()].filter((m) => m.channel === a.channel).sort((x, y) => num(x.ts) - num(y.ts));
    let list: StoredMessage[];
    if (method === 'conversations.history') {
      list = inChannel.filter((m) => (!m.threadTs || m.replyBroadcast) && inRange(m)).reverse();
    } else {
      const parent = this.messages.get(`${a.channel}/${a.ts}`);
      if (!a.ts || !parent) return { ok: false, error: 'thread_not_found' };
      const root = parent.threadTs ?? parent.ts;
      const top = this.messages.get(`${a.channel}/${root}`)!;
      list = [top, ...inChannel.filter((m) => m.threadTs === root && m.ts !== root && inRange(m))];
    }
    const max = method === 'conversations.history' ? 999 : 1000;
    const limit = Math.min(max, Math.max(1, Number(a.limit) || (method === 'conversations.history' ? 100 : 1000)));
    const start = a.cursor ? Number(Buffer.from(String(a.cursor), 'base64').toString('utf8').replace(/^offset:/, '')) || 0 : 0;
    const page = list.slice(start, start + limit);
    const more = start + limit < list.length;
    const withMeta = truthy(a.include_all_metadata);
    const messages = page.map((m) => ({
      type: 'message', user: this.botUserId, bot_id: 'B0BOT00001', ts: m.ts, text: m.text ?? '', ...(m.blocks ? { blocks: m.blocks } : {}),
      ...(m.threadTs ? { thread_ts: m.threadTs } : {}), ...(m.threadTs && m.replyBroadcast ? { subtype: 'thread_broadcast' } : {}),
      ...(withMeta && m.metadata ? { metadata: m.metadata } : {}),
    }));
    return { ok: true, messages, has_more: more, response_metadata: { next_cursor: more ? Buffer.from(`offset:${start + limit}`).toString('base64') : '' } };
  }

  private updateMessage(a: Json): Json {
    const msg = this.messages.get(`${a.channel}/${a.ts}`);
    if (!msg) return { ok: false, error: 'message_not_found' };
    if (typeof a.text === 'string' && a.text.length > 4000) return { ok: false, error: 'msg_too_long' };
    const errs = validateBlocks(a.blocks, 50);
    if (errs.length) return { ok: false, error: 'invalid_blocks', errors: errs };
    if (a.text !== undefined) msg.text = a.text;
    if (a.blocks !== undefined) msg.blocks = a.blocks;
    else if (a.text !== undefined) msg.blocks = undefined;
    msg.updates += 1;
    return { ok: true, channel: a.channel, ts: a.ts, text: msg.text };
  }

  private openView(method: string, a: Json): Json {
    const t = this.triggers.get(a.trigger_id);
    if (!t) return { ok: false, error: 'invalid_trigger_id' };
    if (t.used) return { ok: false, error: 'exchanged_trigger_id' };
    if (Date.now() - t.issuedAt > this.triggerTtlMs) return { ok: false, error: 'expired_trigger_id' };
    const errs = validateView(a.view);
    if (errs.length) return { ok: false, error: 'invalid_arguments', response_metadata: { messages: errs } };
    t.used = true;
    const stack = method === 'views.open' ? [] : (this.stacks.get(t.user) ?? []);
    if (method === 'views.push' && stack.length >= 3) return { ok: false, error: 'push_limit_reached' };
    const id = `V${String(++this.viewSeq).padStart(9, '0')}`;
    const rec: ViewRecord = { id, user: t.user, view: a.view, hash: `${Date.now()}.${randomUUID().slice(0, 8)}`, rootId: stack[0] ?? id, previousId: stack.at(-1) ?? null };
    this.views.set(id, rec);
    this.stacks.set(t.user, [...stack, id]);
    return { ok: true, view: this.viewObject(rec) };
  }

  private updateView(a: Json): Json {
    const rec = this.views.get(a.view_id);
    if (!rec) return { ok: false, error: 'not_found' };
    if (a.hash && a.hash !== rec.hash) return { ok: false, error: 'hash_conflict' };
    const errs = validateView(a.view);
    if (errs.length) return { ok: false, error: 'invalid_arguments', response_metadata: { messages: errs } };
    rec.view = a.view;
    rec.hash = `${Date.now()}.${randomUUID().slice(0, 8)}`;
    return { ok: true, view: this.viewObject(rec) };
  }

  viewObject(rec: ViewRecord, values: Json = {}): Json {
    return {
      ...rec.view,
      id: rec.id,
      team_id: this.teamId,
      hash: rec.hash,
      root_view_id: rec.rootId,
      previous_view_id: rec.previousId,
      app_id: 'A0123APPID',
      bot_id: 'B0BOT00001',
      private_metadata: rec.view.private_metadata ?? '',
      callback_id: rec.view.callback_id ?? '',
      state: { values },
    };
  }

  /** the view currently on top of a user's stack */
  topView(user: string): ViewRecord | undefined {
    const id = this.stacks.get(user)?.at(-1);
    return id ? this.views.get(id) : undefined;
  }

  closeViews(user: string): void {
    this.stacks.delete(user);
  }

  /**
   * What Slack does with the app's answer to a view_submission: `errors` keep the view open (keys must be
   * input blocks of it), `update` replaces it, `push` stacks a view (max 3), `clear`/empty close.
   */
  applyViewAck(user: string, viewId: string, ack: Json | undefined): { ok: boolean; error?: string; messages?: string[] } {
    const rec = this.views.get(viewId);
    if (!rec) return { ok: false, error: 'not_found' };
    const action = ack?.response_action;
    if (!action) {
      this.stacks.set(user, (this.stacks.get(user) ?? []).filter((id) => id !== viewId));
      return { ok: true };
    }
    if (action === 'clear') {
      this.stacks.delete(user);
      return { ok: true };
    }
    if (action === 'errors') {
      const inputs = new Set(((rec.view.blocks ?? []) as Json[]).filter((b) => b.type === 'input').map((b) => b.block_id));
      const bad = Object.keys(ack!.errors ?? {}).filter((k) => !inputs.has(k));
      if (bad.length) return { ok: false, error: 'invalid_errors', messages: bad.map((k) => `errors key ${k} is not an input block of the view`) };
      return { ok: true };
    }
    const errs = validateView(ack!.view);
    if (errs.length) return { ok: false, error: 'invalid_arguments', messages: errs };
    if (action === 'update') {
      rec.view = ack!.view;
      rec.hash = `${Date.now()}.${randomUUID().slice(0, 8)}`;
      return { ok: true };
    }
    if (action === 'push') {
      const stack = this.stacks.get(user) ?? [];
      if (stack.length >= 3) return { ok: false, error: 'push_limit_reached' };
      const id = `V${String(++this.viewSeq).padStart(9, '0')}`;
      this.views.set(id, { id, user, view: ack!.view, hash: `${Date.now()}.${randomUUID().slice(0, 8)}`, rootId: stack[0] ?? id, previousId: stack.at(-1) ?? null });
      this.stacks.set(user, [...stack, id]);
      return { ok: true };
    }
    return { ok: false, error: `unknown response_action ${String(action)}` };
  }

  // ---- Socket Mode ----
  private onSocket(ws: WebSocket): void {
    this.sockets.add(ws);
    ws.on('close', () => this.sockets.delete(ws));
    ws.on('message', (data) => {
      const frame = JSON.parse(String(data));
      this.socketFrames.push(frame);
      const done = this.pendingAcks.get(frame.envelope_id);
      if (done) {
        this.pendingAcks.delete(frame.envelope_id);
        done(frame.payload ?? {});
      }
    });
    ws.send(JSON.stringify({ type: 'hello', num_connections: 1, debug_info: { host: 'emulator', approximate_connection_time: 18060 }, connection_info: { app_id: 'A0123APPID' } }));
  }

  get connectedSockets(): number {
    return this.sockets.size;
  }

  /** deliver an envelope over Socket Mode; resolves with the ack payload (rejects after 3 s like Slack) */
  sendEnvelope(type: 'slash_commands' | 'interactive', payload: Json): Promise<Json> {
    const ws = [...this.sockets][0];
    if (!ws) return Promise.reject(new Error('no socket connected'));
    const envelope_id = randomUUID();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pendingAcks.delete(envelope_id);
        reject(new Error('operation_timeout: no ack within 3 s'));
      }, 3000);
      this.pendingAcks.set(envelope_id, (p) => {
        clearTimeout(timer);
        resolve(p);
      });
      ws.send(JSON.stringify({ envelope_id, type, accepts_response_payload: type === 'slash_commands' || payload.type === 'view_submission', payload }));
    });
  }
}
