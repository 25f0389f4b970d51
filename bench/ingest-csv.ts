/**
 * Ingest benchmark: generates a CSV of 50 numeric and 10 categorical columns
 * (streamed to a temporary file, never whole in memory), then runs the full
 * ingest on it from a file stream: inference and shards, in one pass where
 * the first rows' types hold (`ingestDataset`), or with --two-pass as
 * `inferDataset` then `writeShards`. Prints MB/s and the peak RSS.
 *
 *   npx tsc -p tsconfig.build.json
 *   taskset -c 0 node dist/bench/ingest-csv.js 1024 [--two-pass] [--fresh]
 *
 * The argument is the file size in MB (default 200). The file is kept in
 * the temporary folder for reuse; --fresh writes it again.
 */
import {
  createReadStream,
  createWriteStream,
  existsSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';

import {
  type DatasetInput,
  inferDataset,
  ingestDataset,
  type IngestResult,
  writeShards,
} from '#libs/datasets';

const NUMERIC = 50;
const CATEGORICAL = 10;
const MB = 1024 * 1024;

async function generate(path: string, bytes: number): Promise<void> {
  const out = createWriteStream(path);
  let state = 12345;
  const random = () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;

    return state / 4294967296;
  };
  const header = [
    ...Array.from({ length: NUMERIC }, (_, i) => `n${i}`),
    ...Array.from({ length: CATEGORICAL }, (_, i) => `c${i}`),
  ];
  let written = 0;
  const write = async (text: string) => {
    written += text.length;
    if (!out.write(text)) await once(out, 'drain');
  };
  await write(`${header.join(',')}\n`);
  while (written < bytes) {
    const lines: string[] = [];
    for (let r = 0; r < 1000; r++) {
      const cells: string[] = [];
      for (let i = 0; i < NUMERIC; i++) {
        cells.push(((random() - 0.5) * 2000).toFixed(3));
      }
      for (let i = 0; i < CATEGORICAL; i++) {
        cells.push(`cat${i}_${Math.floor(random() * 20)}`);
      }
      lines.push(cells.join(','));
    }
    await write(`${lines.join('\n')}\n`);
  }
  out.end();
  await once(out, 'finish');
}

function fileInput(path: string): DatasetInput {
  return {
    fileName: 'bench.csv',
    size: statSync(path).size,
    open: () => createReadStream(path, { highWaterMark: MB }),
    openRange: (start, end) => createReadStream(path, { start, end: end - 1 }),
  };
}

async function main(): Promise<void> {
  const sizeMb = Number(process.argv[2] ?? 200);
  const path = join(tmpdir(), `chorus-ingest-bench-${sizeMb}mb.csv`);
  if (process.argv.includes('--fresh') || !existsSync(path)) {
    await generate(path, sizeMb * MB);
  }
  const input = fileInput(path);
  const megabytes = input.size! / MB;

  const twoPasses = process.argv.includes('--two-pass');
  let shardBytes = 0;
  const onShard = (shard: { bytes: Buffer }) => {
    shardBytes += shard.bytes.length;
  };
  const t0 = performance.now();
  let t1: number;
  let result: Omit<IngestResult, 'passes'> & { passes: number };
  if (twoPasses) {
    const inference = await inferDataset(input);
    t1 = performance.now();
    const manifest = await writeShards(input, {
      settings: inference.settings,
      schema: inference.schema,
      onShard,
    });
    result = { ...inference, manifest, passes: 2 };
  } else {
    result = await ingestDataset(input, { onShard });
    t1 = performance.now();
  }
  const t2 = performance.now();
  const seconds = (ms: number) => Math.round(ms) / 1000;

  console.log(
    JSON.stringify(
      {
        fileMB: Math.round(megabytes),
        rows: result.schema.rowCount,
        reportOk: result.report.ok,
        types: [...new Set(result.schema.columns.map((c) => c.type))],
        passes: result.passes,
        seconds: seconds(t2 - t0),
        ...(twoPasses
          ? {
              inferenceMBps: Math.round(megabytes / ((t1 - t0) / 1000)),
              shardMBps: Math.round(megabytes / ((t2 - t1) / 1000)),
            }
          : {}),
        totalMBps: Math.round(megabytes / ((t2 - t0) / 1000)),
        shards: result.manifest?.shards.length,
        shardMB: Math.round(shardBytes / MB),
        peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
      },
      null,
      2,
    ),
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
