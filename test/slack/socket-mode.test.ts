import { afterEach, expect, it } from 'vitest';
import { SlackEmulator } from '../../src/devkit/slack-emulator/server.ts';
import { viewSubmission } from '../../src/devkit/slack-emulator/payloads.ts';
import { createSlackApp, type SlackRuntime } from '../../src/slack/app.ts';
import { loadSlackConfig } from '../../src/slack/config.ts';
import { MemoryOutboxStore } from '../../src/slack/outbox.ts';
import { createLogger } from '../../src/log.ts';
import { FakeEngine } from '../support/fake-engine.ts';
import { until, wizardPages } from './harness.ts';

let emu: SlackEmulator | undefined;
let rt: SlackRuntime | undefined;
afterEach(async () => {
  await rt?.stop();
  await emu?.close();
});

it('Socket Mode: connects via apps.connections.open + hello, acks slash commands and view submissions in envelopes', async () => {
  emu = await new SlackEmulator().start();
  const config = loadSlackConfig({ SLACK_BOT_TOKEN: 'xoxb-t', SLACK_APP_TOKEN: 'xapp-1-t', SLACK_API_URL: emu.apiUrl, RE_BOT_APPROVERS: '*', RE_BOT_OPERATORS: '*' });
  expect(config.mode).toBe('socket');
  rt = createSlackApp({
    engine: new FakeEngine({ approvers: [], required: 1, allowSelfApproval: false, expiresInMs: 1000 }),
    config,
    logger: createLogger({ test: 'socket' }),
    outboxStore: new MemoryOutboxStore(),
    sealSecret: async () => 'sec_x',
    deployments: () => [],
  });
  await rt.start();
  await until(() => emu!.connectedSockets > 0, 5000, 'socket connection');
  expect(emu.callsTo('apps.connections.open')).toHaveLength(1);
  const command = (text: string) => ({
    command: '/re', text, user_id: 'U0REQUESTR', channel_id: 'C0123CHAN', team_id: emu!.teamId, trigger_id: emu!.issueTrigger('U0REQUESTR'), response_url: 'http://127.0.0.1:1/x',
  });
  const ack = await emu.sendEnvelope('slash_commands', command('help'));
  expect(String(ack.text)).toContain('/re setup');
  expect(emu.socketFrames.at(-1)!.envelope_id).toBeTruthy();

  expect(await emu.sendEnvelope('slash_commands', command('setup'))).toEqual({});
  await until(() => emu!.topView('U0REQUESTR'), 3000, 'modal');
  const errors = await emu.sendEnvelope('interactive', viewSubmission(emu, 'U0REQUESTR', { ...wizardPages()[0], 'cluster.namespace': 'BAD' }));
  expect(errors).toMatchObject({ response_action: 'errors', errors: { 'cluster.namespace': expect.any(String) } });
  const next = await emu.sendEnvelope('interactive', viewSubmission(emu, 'U0REQUESTR', wizardPages()[0]));
  expect(next.response_action).toBe('update');
  expect(emu.applyViewAck('U0REQUESTR', emu.topView('U0REQUESTR')!.id, next)).toEqual({ ok: true });
});
