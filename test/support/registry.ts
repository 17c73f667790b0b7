export * from '../../src/devkit/registry.ts';
