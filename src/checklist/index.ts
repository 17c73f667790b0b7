import type { StepHandler } from './types.ts';
import { prerequisites } from './prerequisites.ts';
import { agents } from './agents.ts';
import { secretsBackend } from './secrets-backend.ts';
import { xcomBackend } from './xcom-backend.ts';
import { dagSources } from './dag-sources.ts';
import { logging } from './logging.ts';
import { deploy } from './deploy.ts';
import { verify } from './verify.ts';
import { ROTATE_TOKEN_HANDLERS } from './rotate-token.ts';

/** In checklist order (STEP_IDS); the engine runs them in EXECUTION_ORDER. */
export const STEP_HANDLERS: StepHandler[] = [prerequisites, agents, secretsBackend, xcomBackend, dagSources, logging, deploy, verify];

/** Every handler a job can need: the setup's steps and those of the other job kinds (src/spec/rotate-plan.ts JOB_KINDS). */
export const ALL_HANDLERS: StepHandler[] = [...STEP_HANDLERS, ...ROTATE_TOKEN_HANDLERS];

export function handlerFor(id: string): StepHandler | undefined {
  return STEP_HANDLERS.find((h) => h.id === id);
}
