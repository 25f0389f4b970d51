// Compiles every WebAssembly text file under libs/*/src (*.wat) with wabt
// into a *.wasm beside it, for the TypeScript sources that vitest runs, and
// into the same place under dist/, for the compiled code. Part of
// `npm run build`, and of vitest's setup (beside the sources only), so that
// the specs run without a build. Usage: node scripts/build-wasm.cjs
const {
  mkdirSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');

function watFiles(directory) {
  return readdirSync(directory, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(directory, entry.name);
    if (entry.isDirectory()) {
      return watFiles(file);
    }

    return entry.name.endsWith('.wat') ? [file] : [];
  });
}

/** Compiles the .wat files into .wasm files under each of `roots`. */
async function buildWasm(roots = ['.', 'dist']) {
  const wabt = await require('wabt')();
  const libs = path.join(root, 'libs');
  const sources = readdirSync(libs).flatMap((lib) =>
    safeWatFiles(path.join(libs, lib, 'src')),
  );
  for (const file of sources) {
    const module = wabt.parseWat(file, readFileSync(file, 'utf8'), {
      simd: true,
    });
    try {
      module.validate();
      const { buffer } = module.toBinary({});
      const relative = path.relative(root, file).replace(/\.wat$/, '.wasm');
      for (const target of roots.map((r) => path.join(r, relative))) {
        mkdirSync(path.dirname(path.join(root, target)), { recursive: true });
        writeFileSync(path.join(root, target), buffer);
      }
    } finally {
      module.destroy();
    }
  }
}

function safeWatFiles(directory) {
  try {
    return watFiles(directory);
  } catch (error) {
    if (error.code === 'ENOENT') {
      return [];
    }
    throw error;
  }
}

module.exports = { buildWasm };

if (require.main === module) {
  buildWasm().catch((error) => {
    console.error(error.message ?? error);
    process.exit(1);
  });
}
