/**
 * Interaction payloads as Slack builds them from what a user does in a modal, for the view on top of a
 * user's stack in the emulator: fill and submit a page, pick an option of a `dispatch_action` select,
 * press a button, close the modal. State values are typed from the view's own elements.
 */
import type { SlackEmulator } from './server.ts';

type Json = Record<string, any>;

function top(emu: SlackEmulator, user: string) {
  const t = emu.topView(user);
  if (!t) throw new Error(`no modal open for ${user}`);
  return t;
}

function option(el: Json, value: string): Json {
  const o = ((el.options ?? []) as Json[]).find((x) => x.value === value);
  if (!o) throw new Error(`option ${value} is not offered by ${el.action_id}`);
  return o;
}

/**
 * `{block_id: value}` → view.state.values, like Slack: every input block is present; blocks not given
 * carry their initial value (or null). Checkboxes take comma-separated option values.
 */
export function stateOf(view: Json, values: Record<string, string>): Json {
  const inputs = ((view.blocks ?? []) as Json[]).filter((b) => b.type === 'input');
  for (const block of Object.keys(values)) if (!inputs.some((b) => b.block_id === block)) throw new Error(`the view has no input block ${block}`);
  const state: Json = {};
  for (const b of inputs) {
    const el = b.element as Json;
    const given = values[b.block_id];
    const typed: Json = { type: el.type };
    if (el.type === 'static_select') typed.selected_option = given === undefined ? (el.initial_option ?? null) : given === '' ? null : option(el, given);
    else if (el.type === 'checkboxes') typed.selected_options = given === undefined ? (el.initial_options ?? []) : given.split(',').filter(Boolean).map((v) => option(el, v));
    else typed.value = given === undefined ? (el.initial_value ?? null) : given === '' ? null : given;
    state[b.block_id] = { [el.action_id]: typed };
  }
  return state;
}

const envelope = (emu: SlackEmulator, user: string) => ({
  team: { id: emu.teamId, domain: 'acme' },
  user: { id: user, username: user, name: user, team_id: emu.teamId },
  api_app_id: 'A0123APPID',
  token: 'x',
  is_enterprise_install: false,
});

export function viewSubmission(emu: SlackEmulator, user: string, values: Record<string, string>): Json {
  const t = top(emu, user);
  return { type: 'view_submission', ...envelope(emu, user), trigger_id: emu.issueTrigger(user), view: emu.viewObject(t, stateOf(t.view, values)), response_urls: [] };
}

export function viewClosed(emu: SlackEmulator, user: string): Json {
  const t = top(emu, user);
  return { type: 'view_closed', ...envelope(emu, user), view: emu.viewObject(t), is_cleared: false };
}

function viewAction(emu: SlackEmulator, user: string, action: Json, values: Record<string, string>): Json {
  const t = top(emu, user);
  return {
    type: 'block_actions',
    ...envelope(emu, user),
    container: { type: 'view', view_id: t.id },
    trigger_id: emu.issueTrigger(user),
    view: emu.viewObject(t, stateOf(t.view, values)),
    actions: [{ ...action, action_ts: String(Date.now() / 1000) }],
  };
}

/** the user picks `value` in the select of input block `blockId` (fires only with dispatch_action) */
export function selectInView(emu: SlackEmulator, user: string, blockId: string, value: string, typed: Record<string, string> = {}): Json {
  const t = top(emu, user);
  const block = ((t.view.blocks ?? []) as Json[]).find((b) => b.block_id === blockId);
  if (!block?.dispatch_action) throw new Error(`block ${blockId} does not dispatch actions`);
  const el = block.element as Json;
  return viewAction(emu, user, { type: 'static_select', action_id: el.action_id, block_id: blockId, selected_option: option(el, value) }, { ...typed, [blockId]: value });
}

/** the user presses a button (by action_id) in the top view */
export function pressInView(emu: SlackEmulator, user: string, actionId: string, typed: Record<string, string> = {}): Json {
  const t = top(emu, user);
  for (const b of (t.view.blocks ?? []) as Json[]) {
    const el = ((b.elements ?? []) as Json[]).find((e) => e.action_id === actionId);
    if (el) return viewAction(emu, user, { type: 'button', action_id: actionId, block_id: b.block_id, value: el.value, text: el.text }, typed);
  }
  throw new Error(`no button ${actionId} in the top view`);
}

/** the user presses a button of a message the bot posted; throws if the message has no such button */
export function pressInMessage(emu: SlackEmulator, user: string, channel: string, ts: string, actionId: string): Json {
  const m = emu.messages.get(`${channel}/${ts}`);
  if (!m) throw new Error(`no message ${channel}/${ts}`);
  for (const b of (m.blocks ?? []) as Json[]) {
    const el = ((b.elements ?? []) as Json[]).find((e) => e.action_id === actionId);
    if (!el) continue;
    return {
      type: 'block_actions',
      ...envelope(emu, user),
      container: { type: 'message', message_ts: ts, channel_id: channel, is_ephemeral: false },
      trigger_id: emu.issueTrigger(user),
      channel: { id: channel, name: 'channel' },
      message: { type: 'message', ts, text: m.text, blocks: m.blocks, ...(m.threadTs ? { thread_ts: m.threadTs } : {}) },
      state: { values: {} },
      // as Slack's: what the app posts there shows as an ephemeral to this user in this channel
      response_url: emu.responseUrl(undefined, { channel, user }),
      actions: [{ type: 'button', action_id: actionId, block_id: b.block_id, value: el.value, text: el.text, action_ts: String(Date.now() / 1000) }],
    };
  }
  throw new Error(`message ${channel}/${ts} has no button ${actionId}`);
}
