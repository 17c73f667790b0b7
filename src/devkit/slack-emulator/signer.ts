import { createHmac } from 'node:crypto';

export const FORM_CONTENT_TYPE = 'application/x-www-form-urlencoded';

/** Slack v0 request signature: `v0=` + hex HMAC-SHA256(secret, `v0:<ts>:<raw body>`). */
export function slackSignature(secret: string, timestamp: string | number, body: string): string {
  return 'v0=' + createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex');
}

export interface SignedRequest {
  body: string;
  headers: Record<string, string>;
}

/** Headers exactly as Slack sends them (content-type without charset: Bolt compares it strictly). */
export function signRequest(secret: string, body: string, nowSec = Math.floor(Date.now() / 1000)): SignedRequest {
  const ts = String(nowSec);
  return {
    body,
    headers: {
      'content-type': FORM_CONTENT_TYPE,
      'x-slack-request-timestamp': ts,
      'x-slack-signature': slackSignature(secret, ts, body),
    },
  };
}

export function slashCommandBody(fields: Record<string, string>): string {
  return new URLSearchParams(fields).toString();
}

export function interactiveBody(payload: unknown): string {
  return 'payload=' + encodeURIComponent(JSON.stringify(payload));
}
