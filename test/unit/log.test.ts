import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.ts';
import { forgetAllSecrets, registerSecret } from '../../src/redact.ts';

const SECRET = 'agt-9f3Kq7ZxW2mPa8Lr';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      cb();
    },
  });
  // pino writes synchronously to a plain Writable via stream.write
  return { lines, stream };
}

afterEach(() => {
  forgetAllSecrets();
  delete process.env.LOG_LEVEL;
});

describe('log', () => {
  it('writes one JSON object per line carrying job, step and requestId bindings', () => {
    const { lines, stream } = capture();
    const log = createLogger({}, stream).child({ job: 'job-123', step: 'helm-install', requestId: 'req-7' });
    log.info({ attempt: 2 }, 'step started');
    log.warn('slow');
    expect(lines).toHaveLength(2);
    const parsed = lines.map((l) => JSON.parse(l));
    for (const p of parsed) expect(p).toMatchObject({ job: 'job-123', step: 'helm-install', requestId: 'req-7', app: 're-bot' });
    expect(parsed[0]).toMatchObject({ msg: 'step started', attempt: 2, level: 30 });
    expect(parsed[1]).toMatchObject({ msg: 'slow', level: 40 });
  });

  it('takes its level from LOG_LEVEL', () => {
    process.env.LOG_LEVEL = 'warn';
    const { lines, stream } = capture();
    const log = createLogger({}, stream);
    log.info('hidden');
    log.debug('hidden too');
    log.warn('shown');
    expect(lines.map((l) => JSON.parse(l).msg)).toEqual(['shown']);
  });

  it('never lets a registered secret reach a log line, however it is passed', () => {
    registerSecret(SECRET);
    const b64 = Buffer.from(SECRET).toString('base64');
    const { lines, stream } = capture();
    const log = createLogger({}, stream).child({ job: 'job-9' });
    const err = new Error(`helm failed: token ${SECRET} rejected`);
    log.error({ err }, 'install failed');
    log.error(err);
    log.error(err, `while using ${SECRET}`);
    log.error({ context: { deep: { value: SECRET, list: [`x${SECRET}y`], cause: err } } }, 'nested');
    log.error(`msg string ${SECRET}`);
    log.info('interpolated %s and %o', SECRET, { t: SECRET });
    log.warn({ stderr: `data: {"token":"${b64}"}` }, `base64 ${b64}`);
    log.child({ requestId: SECRET }).info('binding');
    const wrapped = new Error('outer', { cause: new Error(`inner ${SECRET}`) });
    log.error({ err: wrapped }, 'wrapped');

    expect(lines).toHaveLength(9);
    const joined = lines.join('\n');
    expect(joined).not.toContain(SECRET);
    expect(joined).not.toContain(b64);
    expect(joined).not.toContain(b64.slice(0, b64.length - 4));
    for (const l of lines) expect(JSON.parse(l).job).toBe('job-9');

    // the error is still useful after redaction: message, type and stack survive
    const first = JSON.parse(lines[0]);
    expect(first.msg).toBe('install failed');
    expect(first.err.message).toBe('helm failed: token [REDACTED] rejected');
    expect(first.err.type ?? first.err.name).toBe('Error');
    expect(first.err.stack).toContain('log.test.ts');
    const second = JSON.parse(lines[1]);
    expect(second.err.message).toBe('helm failed: token [REDACTED] rejected');
    expect(second.err.stack).toContain('[REDACTED]');
    const nested = JSON.parse(lines[3]);
    expect(nested.context.deep.value).toBe('[REDACTED]');
    expect(nested.context.deep.cause.message).toContain('[REDACTED]');
  });
  it('redacts the own fields a failed command carries (execa-style stderr, command line)', () => {
    registerSecret(SECRET);
    const { lines, stream } = capture();
    const err = Object.assign(new Error('Command failed with exit code 1'), { command: `helm upgrade --set token=${SECRET}`, stderr: `Error: 401 for ${SECRET}`, exitCode: 1 });
    createLogger({}, stream).child({ jobId: 'job-5', stepId: 'agents' }).error({ err }, 'helm failed');
    const line = JSON.parse(lines[0]);
    expect(lines[0]).not.toContain(SECRET);
    expect(line).toMatchObject({ jobId: 'job-5', stepId: 'agents', err: { stderr: 'Error: 401 for [REDACTED]', exitCode: 1 } });
    expect(line.err.command).toContain('[REDACTED]');
  });
});
