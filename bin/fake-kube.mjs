#!/usr/bin/env node
import { register } from 'tsx/esm/api';
register();
const { runFakeKubeCli } = await import('../src/devkit/fake-kube/cli.ts');
await runFakeKubeCli(process.argv.slice(2));
