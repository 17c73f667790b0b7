import type { StepHandler } from './types.ts';
import { prerequisites } from './prerequisites.ts';
import { agents } from './agents.ts';
import { secretsBackend } from './secrets-backend.ts';
import { xcomBackend } from './xcom-backend.ts';
import { dagSources } from './dag-sources.ts';
import { logging } from './logging.ts';
import { deploy } from './deploy.ts';
import { verify } from './verify.ts';

/** In checklist order (STEP_IDS); the engine runs them in EXECUTION_ORDER. */
export const STEP_HANDLERS: StepHandler[] = [prerequisites, agents, secretsBackend, xcomBackend, dagSources, logging, deploy, verify];

export function handlerFor(id: string): StepHandler | undefined {
  return STEP_HANDLERS.find((h) => h.id === id);
}
