import type { JobEvent, JobView, JobStepView } from '../jobs/types.ts';

/**
 * Terminal rendering of a job: the eight checklist steps with status and duration, and a live line for
 * the running step (TTY only). All text comes from JobViews, which the engine has already redacted.
 */

const ICON: Record<string, string> = {
  pending: '·',
  running: '▶',
  waiting_approval: '⏸',
  prepared: '◇',
  succeeded: '✔',
  warned: '⚠',
  skipped: '–',
  failed: '✖',
  cancelled: '■',
};

export function formatDuration(ms: number | undefined): string {
  if (ms === undefined) return '';
  if (ms < 1000) return `${ms}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  return `${Math.floor(s / 60)}m${Math.round(s % 60)}s`;
}

export function stepLine(step: JobStepView): string {
  const icon = ICON[step.state] ?? '?';
  const dur = step.durationMs !== undefined ? ` (${formatDuration(step.durationMs)})` : '';
  const detail = step.state === 'failed' ? step.error ?? step.summary : step.summary;
  return `${icon} ${step.number}. ${step.title.padEnd(34)} ${step.state.padEnd(16)}${dur}${detail ? `  ${detail}` : ''}`;
}

export function checklistText(job: JobView): string {
  const lines = [...job.steps].sort((a, b) => a.number - b.number).map(stepLine);
  for (const s of job.steps) {
    for (const w of s.warnings ?? []) lines.push(`    ⚠ step ${s.number}: ${w}`);
  }
  return lines.join('\n');
}

export interface ProgressPrinter {
  onEvent(e: JobEvent): void;
  close(): void;
}

export function createProgressPrinter(out: NodeJS.WriteStream = process.stdout): ProgressPrinter {
  const tty = Boolean(out.isTTY);
  let live = '';
  const clearLive = () => {
    if (tty && live) out.write('\r\x1b[2K');
    live = '';
  };
  const print = (line: string) => {
    clearLive();
    out.write(line + '\n');
  };
  return {
    onEvent(e) {
      switch (e.type) {
        case 'job.queued':
          print(`job ${e.job.id} queued for deployment ${e.job.deployment} (values ${e.job.valuesHash.slice(0, 12)}, chart ${e.job.chart})`);
          break;
        case 'job.started':
          print(`job ${e.job.id} running (attempt ${e.job.attempt})`);
          break;
        case 'step.started': {
          const s = e.job.steps.find((x) => x.stepId === e.stepId);
          if (s) print(`▶ ${s.number}. ${s.title}`);
          break;
        }
        case 'step.progress': {
          const s = e.job.steps.find((x) => x.stepId === e.stepId);
          const line = `    ${s ? `${s.number}.` : ''} ${e.message}`;
          if (tty) {
            clearLive();
            live = line.slice(0, (out.columns ?? 120) - 1);
            out.write(live);
          } else print(line);
          break;
        }
        case 'step.finished':
        case 'step.skipped': {
          const s = e.job.steps.find((x) => x.stepId === e.stepId);
          if (s) print(stepLine(s));
          for (const w of s?.warnings ?? []) print(`    ⚠ ${w}`);
          break;
        }
        case 'step.failed': {
          const s = e.job.steps.find((x) => x.stepId === e.stepId);
          if (s) print(stepLine(s));
          if (e.logTail) print(e.logTail.split('\n').map((l) => `    │ ${l}`).join('\n'));
          break;
        }
        case 'approval.requested': {
          const a = e.approval;
          print(`⏸ approval needed: ${a.title}`);
          print(`    approval hash ${a.hash.slice(0, 16)} (values + chart + diff; a changed diff asks again)`);
          for (const [k, v] of Object.entries(a.facts)) print(`    ${k}: ${v}`);
          // the plan lines (namespace, Secrets, release) come before the first blank line of the diff text
          for (const l of a.diffText.split('\n\n')[0]!.split('\n').slice(0, 30)) if (l.trim()) print(`    plan: ${l}`);
          if (a.changedKeys.length) print(`    changed: ${a.changedKeys.slice(0, 20).join(', ')}${a.changedKeys.length > 20 ? ` … (+${a.changedKeys.length - 20})` : ''}`);
          break;
        }
        case 'approval.updated': {
          const a = e.approval;
          const who = a.approvals.map((v) => v.user).join(', ');
          print(`    approval ${a.state}${who ? ` by ${who}` : ''}${a.rejectedBy ? ` (rejected by ${a.rejectedBy})` : ''}`);
          break;
        }
        case 'job.succeeded':
        case 'job.failed':
        case 'job.cancelled':
          clearLive();
          print(`job ${e.job.id} ${e.type.slice(4)}${e.job.error ? `: ${e.job.error}` : ''}`);
          break;
      }
    },
    close() {
      clearLive();
    },
  };
}
