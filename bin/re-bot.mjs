#!/usr/bin/env node
// Runs the TypeScript sources directly (tsx), so `npx re-bot` works right after `npm ci` with no build step.
import { register } from 'tsx/esm/api';
register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
