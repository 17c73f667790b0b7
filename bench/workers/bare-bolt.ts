/**
 * The comparison app: a bare Bolt 5 app in HTTP mode that only acks `/re` and any block action.
 * Same signing secret, same Web API client options (pointed at the emulator) and log level as re-bot.
 * env: PORT, SLACK_SIGNING_SECRET, SLACK_BOT_TOKEN, SLACK_API_URL
 */
import { App, LogLevel } from '@slack/bolt';

const app = new App({
  token: process.env.SLACK_BOT_TOKEN!,
  signingSecret: process.env.SLACK_SIGNING_SECRET!,
  clientOptions: { slackApiUrl: process.env.SLACK_API_URL, retryConfig: { retries: 0 } },
  logLevel: LogLevel.ERROR,
  deferInitialization: true,
});
app.command('/re', async ({ ack }) => {
  await ack();
});
app.action(/.*/, async ({ ack }) => {
  await ack();
});
await app.init();
await app.start(Number(process.env.PORT));
process.once('SIGTERM', () => void app.stop().then(() => process.exit(0)));
