/**
 * Where wizard sessions live between pages (src/slack/wizard.ts). The running bot keeps them in the database
 * (`repo.wizards`, table `wizard_sessions`), so a page that reaches another replica, or the bot after a restart,
 * finds its session; `MemoryWizardStore` is for tests that build a Slack app without a database.
 */

/** A session as stored: `session` is JSON text (sealed-secret ids and env/file ref names, never a typed secret). */
export interface WizardSessionRow {
  key: string;
  user: string;
  channel: string;
  /** ISO-8601 */
  createdAt: string;
  /** ms since epoch */
  expiresAt: number;
  session: string;
}

export interface WizardStore {
  /** insert, or replace the row with the same key */
  put(row: WizardSessionRow): Promise<void>;
  /** undefined when missing or expired */
  get(key: string): Promise<WizardSessionRow | undefined>;
  /** removes the row, expired or not, and returns it (its sealed ids are the caller's to erase) */
  delete(key: string): Promise<WizardSessionRow | undefined>;
  /** removes the expired rows; how many */
  sweep(): Promise<number>;
}

export class MemoryWizardStore implements WizardStore {
  private m = new Map<string, WizardSessionRow>();
  constructor(private now: () => number = Date.now) {}
  async put(row: WizardSessionRow): Promise<void> {
    this.m.set(row.key, { ...row });
  }
  async get(key: string): Promise<WizardSessionRow | undefined> {
    const r = this.m.get(key);
    return r && r.expiresAt > this.now() ? { ...r } : undefined;
  }
  async delete(key: string): Promise<WizardSessionRow | undefined> {
    const r = this.m.get(key);
    this.m.delete(key);
    return r;
  }
  async sweep(): Promise<number> {
    let n = 0;
    for (const [k, r] of this.m) if (r.expiresAt <= this.now()) (this.m.delete(k), n++);
    return n;
  }
}
