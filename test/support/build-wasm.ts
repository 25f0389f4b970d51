import { createRequire } from 'node:module';
import path from 'node:path';

/**
 * vitest's setup for the unit specs: compiles the WebAssembly kernels beside
 * their sources, as `npm run build` does, so that the specs also run without
 * a build first. vitest runs from the repository root.
 */
export default async function setup(): Promise<void> {
  const require = createRequire(path.resolve('package.json'));
  const { buildWasm } = require('./scripts/build-wasm.cjs') as {
    buildWasm: (roots: string[]) => Promise<void>;
  };
  await buildWasm(['.']);
}
