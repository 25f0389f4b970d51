import { createRequire } from 'node:module';

/**
 * vitest's setup for the unit specs: compiles the WebAssembly kernels beside
 * their sources, as `npm run build` does, so that the specs also run without
 * a build first.
 */
export default async function setup(): Promise<void> {
  const require = createRequire(import.meta.url);
  const { buildWasm } = require('../../scripts/build-wasm.cjs') as {
    buildWasm: (roots: string[]) => Promise<void>;
  };
  await buildWasm(['.']);
}
