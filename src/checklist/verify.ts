import type { StepHandler, StepOutcome } from './types.ts';
import { StepFailure } from './types.ts';
import { waitForAgentPods, sleep } from './release.ts';
import { redact } from '../redact.ts';

const TERMINAL = new Set(['success', 'failed']);

/** Step 8: pods Ready, agents healthy, a test DAG run through the Airflow API, its task log tail. */
export const verify: StepHandler = {
  id: 'verify',
  async run(ctx): Promise<StepOutcome> {
    const { spec, infra } = ctx;
    const warnings: string[] = [];
    const pods = await waitForAgentPods(ctx, (spec.verify?.podsTimeoutSeconds ?? 120) * 1000);
    const podSummary = Object.entries(pods.components).map(([c, s]) => `${c} ${s.ready}/${s.total}`).join(', ');

    const dagId = spec.verify?.testDag;
    if (!dagId) {
      return { status: 'succeeded', summary: `agent pods Ready (${podSummary}); no test DAG configured`, output: { pods: pods.components } };
    }
    if (!infra.airflow) {
      warnings.push(`test DAG ${dagId} not run: no Airflow API URL configured (deployment.airflowApiUrl)`);
      return { status: 'warned', summary: `agent pods Ready (${podSummary}); test DAG skipped`, warnings, output: { pods: pods.components } };
    }

    const airflow = infra.airflow;
    const opts = { signal: ctx.signal };
    const runId = await ctx.checkpoint.once('dagRunId', async () => {
      ctx.progress(`unpausing and triggering ${dagId}`);
      await airflow.unpauseDag(dagId, opts);
      // one run per job attempt, even when a crash lands between the trigger and the checkpoint
      const dagRunId = `re-bot__${ctx.jobId}__${ctx.attempt}`;
      try {
        return (await airflow.triggerDagRun(dagId, { triggered_by: 're-bot', job: ctx.jobId }, { ...opts, dagRunId })).dagRunId;
      } catch (err) {
        if ((err as { code?: string }).code !== 'conflict') throw err;
        return dagRunId; // triggered by this step before the interruption: follow that run
      }
    });

    const deadline = Date.now() + (spec.verify?.timeoutSeconds ?? 600) * 1000;
    let state = 'queued';
    while (!TERMINAL.has(state)) {
      if (Date.now() > deadline) throw new StepFailure(`test DAG run ${dagId}/${runId} still ${state} after ${spec.verify?.timeoutSeconds ?? 600}s`, { hint: 'check that the worker queue in the DAG matches a worker queue of the agents' });
      const run = await airflow.getDagRun(dagId, runId, opts);
      state = run.state;
      ctx.progress(`test DAG run ${runId}: ${state}`);
      if (!TERMINAL.has(state)) await sleep(1000, ctx.signal);
      if (ctx.signal.aborted) throw new StepFailure('cancelled while waiting for the test DAG run');
    }

    const tasks = await airflow.listTaskInstances(dagId, runId, opts);
    const logTails: Record<string, string> = {};
    for (const t of tasks) {
      if (t.tryNumber < 1) continue;
      const log = await airflow.taskLog(dagId, runId, t.taskId, t.tryNumber, opts).catch((e: Error) => `(log unavailable: ${e.message})`);
      logTails[t.taskId] = redact(log.split('\n').slice(-10).join('\n'));
    }
    const taskSummary = tasks.map((t) => `${t.taskId}=${t.state}`).join(', ');
    if (state !== 'success') {
      const failed = tasks.find((t) => t.state === 'failed');
      throw new StepFailure(`test DAG run ${dagId}/${runId} failed (${taskSummary})`, { logTail: failed ? logTails[failed.taskId] : undefined });
    }
    return {
      status: warnings.length ? 'warned' : 'succeeded',
      summary: `agent pods Ready; test DAG ${dagId} run ${runId} succeeded (${taskSummary})`,
      warnings,
      output: { pods: pods.components, dagRunId: runId, tasks, logTails },
    };
  },
};
