/**
 * Streams objects of growing size through libs/storage (multipart upload,
 * then download) and compares with writing the same bytes to a local file.
 * Each size runs in its own process so its peak RSS is its own: memory must
 * stay flat as the object grows.
 *
 *   npm run bench:storage            # 256 MiB and 1 GiB
 *   npm run bench:storage -- 64 256  # other sizes, in MiB
 *
 * Uses the embedded S3 server unless S3_ENDPOINT (and keys) are set.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { startEmbeddedS3 } from '#libs/embedded';
import { ObjectStorage, streamUpload } from '#libs/storage';

const MIB = 1024 * 1024;

interface ChildResult {
  mode: string;
  mib: number;
  seconds: number;
  downloadSeconds?: number;
  maxRssMib: number;
}

/** A stream of `mib` MiB cycling through a random 4 MiB block. */
function generated(mib: number): Readable {
  const block = randomBytes(4 * MIB);
  let remaining = mib * MIB;

  return new Readable({
    read() {
      if (remaining <= 0) {
        this.push(null);

        return;
      }
      const size = Math.min(MIB, remaining);
      const offset = (remaining / MIB) % 4;
      remaining -= size;
      this.push(block.subarray(offset * MIB, offset * MIB + size));
    },
  });
}

async function child(mode: string, mib: number, target: string) {
  const started = process.hrtime.bigint();
  const elapsed = () => Number(process.hrtime.bigint() - started) / 1e9;
  const result: ChildResult = { mode, mib, seconds: 0, maxRssMib: 0 };
  if (mode === 'file') {
    await pipeline(generated(mib), createWriteStream(target));
    result.seconds = elapsed();
  } else {
    const config = JSON.parse(target) as {
      endpoint: string;
      accessKey: string;
      secretKey: string;
    };
    const storage = new ObjectStorage({
      ...config,
      region: 'us-east-1',
      bucket: 'bench',
      presignMaxSeconds: 600,
    });
    await storage.ensureBucket();
    const key = `bench-${mib}`;
    const uploaded = await streamUpload({
      storage,
      key,
      body: generated(mib),
      partBytes: 16 * MIB,
      maxBytes: Number.MAX_SAFE_INTEGER,
    });
    result.seconds = elapsed();
    const downloadStart = process.hrtime.bigint();
    const hash = createHash('sha256');
    for await (const chunk of await storage.get(key)) {
      hash.update(chunk as Buffer);
    }
    result.downloadSeconds =
      Number(process.hrtime.bigint() - downloadStart) / 1e9;
    if (hash.digest('hex') !== uploaded.sha256) {
      throw new Error('The downloaded object differs from the upload');
    }
    await storage.remove(key);
  }
  result.maxRssMib = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(JSON.stringify(result));
}

async function main() {
  const [flag, mode, mib, target] = process.argv.slice(2);
  if (flag === '--child') {
    return child(mode, Number(mib), target);
  }
  const sizes = process.argv.slice(2).map(Number).filter(Boolean);
  const dir = mkdtempSync(path.join(tmpdir(), 'chorus-bench-'));
  const external = process.env.S3_ENDPOINT;
  const s3 = external
    ? undefined
    : await startEmbeddedS3({ directory: path.join(dir, 's3'), port: 0 });
  const config = JSON.stringify({
    endpoint: external ?? s3!.endpoint,
    accessKey: process.env.S3_ACCESS_KEY ?? s3!.accessKey,
    secretKey: process.env.S3_SECRET_KEY ?? s3!.secretKey,
  });
  const run = (args: string[]): Promise<ChildResult> =>
    new Promise((resolve, reject) => {
      // Asynchronous, so the embedded S3 server in this process keeps serving.
      execFile(
        process.execPath,
        [__filename, '--child', ...args],
        { maxBuffer: MIB },
        (error, stdout) =>
          error ? reject(error) : resolve(JSON.parse(stdout) as ChildResult),
      );
    });

  console.log(
    'size MiB | file MB/s | S3 up MB/s | S3 down MB/s | up/file | peak RSS MiB',
  );
  for (const size of sizes.length > 0 ? sizes : [256, 1024]) {
    const file = path.join(dir, `plain-${size}`);
    const plain = await run(['file', String(size), file]);
    statSync(file);
    rmSync(file);
    const stored = await run(['s3', String(size), config]);
    const mb = (size * MIB) / 1e6;
    console.log(
      [
        String(size).padStart(8),
        (mb / plain.seconds).toFixed(0).padStart(9),
        (mb / stored.seconds).toFixed(0).padStart(10),
        (mb / stored.downloadSeconds!).toFixed(0).padStart(12),
        (plain.seconds / stored.seconds).toFixed(2).padStart(7),
        stored.maxRssMib.toFixed(0).padStart(12),
      ].join(' | '),
    );
  }
  await s3?.stop();
  rmSync(dir, { recursive: true, force: true });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
