export { openStore, defaultDbPath, type Store, type Db } from './db.ts';
export { createSecretBox, loadSecretKey, type SecretBox } from './crypto.ts';
export { appendAudit, verifyAuditChain, exportAudit, type AuditInput } from './audit.ts';
export * as tables from './schema.ts';
