// Runs the Prisma CLI with no engine download: the schema engine runs as wasm
// through the pg driver adapter (prisma.config.ts) and the client uses the
// wasm query compiler. Usage: node scripts/prisma.cjs <prisma arguments>
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const placeholder = path.join(__dirname, 'prisma-no-native-engine.sh');
const cli = path.join(root, 'node_modules', 'prisma', 'build', 'index.js');

const result = spawnSync(process.execPath, [cli, ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
  env: {
    // generate reads no database, but the schema names DATABASE_URL.
    DATABASE_URL: 'postgresql://unused@127.0.0.1:1/unused',
    ...process.env,
    PRISMA_SCHEMA_ENGINE_BINARY: placeholder,
    PRISMA_QUERY_ENGINE_LIBRARY: placeholder,
    PRISMA_HIDE_UPDATE_MESSAGE: '1',
    CHECKPOINT_DISABLE: '1',
  },
});

process.exit(result.status ?? 1);
