import { defineConfig } from 'drizzle-kit';

// PostgreSQL migrations (RE_BOT_DATABASE_URL): their own folder beside the SQLite ones in ./migrations.
// Generate with `npm run db:generate:pg` (drizzle-kit generate --config drizzle.pg.config.ts).
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/store/pg/schema.ts',
  out: './migrations-pg',
});
