import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';

import { Client } from 'pg';
import { describe, expect, inject, it } from 'vitest';

import { newProject } from './support/client';
import { freePort, PlatformProcess, waitForReady } from '#libs/embedded';

async function until<T>(
  probe: () => Promise<T | undefined>,
  what: string,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) {
      return value;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`Timed out waiting for ${what}`);
}

/** A body that sends `head`, then 1 MiB every 30 ms: slow enough to be killed mid-way. */
function slowBody(head: string): ReadableStream<Uint8Array> {
  const chunk = randomBytes(1024 * 1024);
  let sent = 0;

  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (sent === 0 && head) {
        controller.enqueue(Buffer.from(head));
      }
      await new Promise((resolve) => setTimeout(resolve, 30));
      if (sent >= 35) {
        controller.close();

        return;
      }
      sent += 1;
      controller.enqueue(chunk);
    },
  });
}

const BOUNDARY = 'chorus-crash-test';
/** A model import form up to the start of its weights part. */
const importFormHead =
  `--${BOUNDARY}\r\nContent-Disposition: form-data; name="name"\r\n\r\ncrash\r\n` +
  `--${BOUNDARY}\r\nContent-Disposition: form-data; name="model"; filename="model.json"\r\n` +
  'Content-Type: application/json\r\n\r\n{}\r\n' +
  `--${BOUNDARY}\r\nContent-Disposition: form-data; name="weights"; ` +
  'filename="weights.bin"\r\n' +
  'Content-Type: application/octet-stream\r\n\r\n';

const routes = [
  {
    what: 'a dataset upload',
    path: '/v1/datasets?name=interrupted',
    contentType: 'application/octet-stream',
    head: '',
  },
  {
    what: 'a model import',
    path: '/v1/models/import',
    contentType: `multipart/form-data; boundary=${BOUNDARY}`,
    head: importFormHead,
  },
];

describe('an API killed in the middle of an upload', () => {
  it.each(routes)(
    'leaves no multipart upload, object or row of $what once the sweep has run',
    async ({ path, contentType, head }) => {
      const env = JSON.parse(inject('platformEnv')) as NodeJS.ProcessEnv;
      const port = await freePort();
      const apiEnv = { ...env, PORT: String(port) };
      const base = `http://127.0.0.1:${port}`;
      const db = new Client({ connectionString: env.DATABASE_URL });
      await db.connect();
      const api = new PlatformProcess('api', apiEnv);
      api.start();
      await waitForReady(`${base}/health/ready`);
      const project = await newProject('crash');

      const upload = fetch(`${base}${path}`, {
        method: 'POST',
        headers: {
          Authorization: `Bearer ${project.key}`,
          'Content-Type': contentType,
        },
        body: slowBody(head),
        duplex: 'half',
      } as RequestInit).catch((error: Error) => error);

      // Kill once a part has reached storage.
      const session = await until(async () => {
        const { rows } = await db.query(
          `SELECT "uploadId", key, bytes FROM "UploadSession"
         WHERE "projectId" = $1 AND state = 'ACTIVE' AND bytes > 0`,
          [project.id],
        );

        return rows[0] as { uploadId: string; key: string } | undefined;
      }, 'the first stored part');
      await api.kill();
      expect(await upload).toBeInstanceOf(Error);
      const uploadsDir = inject('s3UploadsDir');
      expect(existsSync(`${uploadsDir}/${session.uploadId}`)).toBe(true);

      // Start it again; the worker's sweep finds the stale session.
      api.start();
      await waitForReady(`${base}/health/ready`);
      await until(async () => {
        const { rows } = await db.query(
          `SELECT state FROM "UploadSession" WHERE "uploadId" = $1`,
          [session.uploadId],
        );

        return rows[0].state === 'ABORTED' ? true : undefined;
      }, 'the sweep to abort the upload');

      const leftovers = existsSync(uploadsDir) ? readdirSync(uploadsDir) : [];
      const rows = await db.query(
        `SELECT id FROM "Dataset" WHERE "projectId" = $1
       UNION ALL SELECT id FROM "Model" WHERE "projectId" = $1`,
        [project.id],
      );
      const object = await fetch(
        `${env.S3_ENDPOINT}/${env.S3_BUCKET}/${session.key}`,
      );
      expect(leftovers).not.toContain(session.uploadId);
      expect(rows.rows).toEqual([]);
      expect(object.status).not.toBe(200);
      await api.stop();
      await db.end();
    },
  );
});
