import { afterEach, expect, it } from 'vitest';
import { SlackEmulator } from '../../src/devkit/slack-emulator/server.ts';
import { createSlackApp, type SlackRuntime } from '../../src/slack/app.ts';
import { loadSlackConfig } from '../../src/slack/config.ts';
import { MemoryOutboxStore } from '../../src/slack/outbox.ts';
import { createLogger } from '../../src/log.ts';
import { FakeEngine } from '../support/fake-engine.ts';
import { until } from './harness.ts';

let emu: SlackEmulator | undefined;
let rt: SlackRuntime | undefined;
afterEach(async () => {
  await rt?.stop();
  await emu?.close();
});

it('Socket Mode: connects via apps.connections.open + hello, acks a slash-command envelope with the help payload', async () => {
  emu = await new SlackEmulator().start();
  const config = loadSlackConfig({ SLACK_BOT_TOKEN: 'xoxb-t', SLACK_APP_TOKEN: 'xapp-1-t', SLACK_API_URL: emu.apiUrl });
  expect(config.mode).toBe('socket');
  rt = createSlackApp({
    engine: new FakeEngine({ approvers: [], required: 1, allowSelfApproval: false, expiresInMs: 1000 }),
    config,
    logger: createLogger({ test: 'socket' }),
    outboxStore: new MemoryOutboxStore(),
    sealSecret: () => 'x',
    deployments: () => [],
  });
  await rt.start();
  await until(() => emu!.connectedSockets > 0, 5000, 'socket connection');
  expect(emu.callsTo('apps.connections.open')).toHaveLength(1);
  const ack = await emu.sendEnvelope('slash_commands', {
    command: '/re', text: 'help', user_id: 'U0REQUESTR', channel_id: 'C0123CHAN', team_id: emu.teamId, trigger_id: emu.issueTrigger('U0REQUESTR'), response_url: 'http://127.0.0.1:1/x',
  });
  expect(String(ack.text)).toContain('/re setup');
  const frame = emu.socketFrames.at(-1)!;
  expect(frame.envelope_id).toBeTruthy();
});
