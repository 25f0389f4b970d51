import { createHash, randomBytes } from 'node:crypto';

import { Client } from 'pg';
import { describe, expect, inject, it } from 'vitest';

import {
  apiUrl,
  codeOf,
  gql,
  newProject,
  settledDataset,
  uploadDataset,
} from './support/client';

/** 200 rows of a small tabular problem, 3% of `income` missing (seeded). */
function goodCsv(): string {
  const lines = ['age,income,member,plan,churned'];
  let seed = 7;
  const random = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
  for (let i = 0; i < 200; i += 1) {
    const income = i % 33 === 0 ? '' : (20000 + random() * 50000).toFixed(2);
    const plan = ['basic', 'plus', 'pro'][i % 3];
    lines.push(
      `${20 + (i % 50)},${income},${i % 2 === 0},${plan},${i % 4 === 0 ? 1 : 0}`,
    );
  }

  return `${lines.join('\r\n')}\r\n`;
}

async function upload(key: string, name: string, body: Buffer | string) {
  const result = await uploadDataset(
    key,
    name,
    Buffer.isBuffer(body) ? body : Buffer.from(body),
  );
  if (result.status !== 201) {
    throw new Error(JSON.stringify(result.body));
  }

  return String(result.body.id);
}

describe('dataset ingestion', () => {
  it('infers a schema with statistics, keeps warnings, and writes shards', async () => {
    const project = await newProject();
    const id = await upload(project.key, 'churn.csv', goodCsv());

    const dataset = await settledDataset(project.key, id);

    expect(dataset.status).toBe('READY');
    expect(dataset.format).toBe('csv');
    expect(dataset.rowCount).toBe(200);
    expect(dataset.shardCount).toBeGreaterThanOrEqual(1);
    const types = Object.fromEntries(
      dataset.schema!.columns.map((c) => [c.name, c.type]),
    );
    expect(types).toEqual({
      age: 'integer',
      income: 'numeric',
      member: 'boolean',
      plan: 'categorical',
      churned: expect.stringMatching(/integer|boolean|categorical/),
    });
    const plan = dataset.schema!.columns.find((c) => c.name === 'plan')!;
    expect([...plan.vocabulary!].sort()).toEqual(['basic', 'plus', 'pro']);
    const age = dataset.schema!.columns.find((c) => c.name === 'age')!;
    expect(age.statistics).toMatchObject({
      count: 200,
      missing: 0,
      min: 20,
      max: 69,
    });
    const income = dataset.schema!.columns.find((c) => c.name === 'income')!;
    expect(income.statistics.missing).toBe(7);
    expect(dataset.report!.ok).toBe(true);
    expect(dataset.report!.problems.map((p) => p.code)).toContain(
      'MISSING_VALUES',
    );
    expect(dataset.sample!.length).toBeGreaterThan(0);
  });

  it('accepts a multipart form and a stratified split', async () => {
    const project = await newProject();
    const form = new FormData();
    form.append('name', 'form.csv');
    form.append(
      'file',
      new Blob([goodCsv()], { type: 'text/csv' }),
      'form.csv',
    );
    const params = new URLSearchParams({
      trainRatio: '0.6',
      validationRatio: '0.2',
      testRatio: '0.2',
      seed: '3',
      stratifyBy: 'plan',
    });

    const response = await fetch(`${apiUrl()}/v1/datasets?${params}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${project.key}` },
      body: form,
    });
    const body = (await response.json()) as { id: string; name: string };
    const dataset = await settledDataset(project.key, body.id);

    expect(response.status).toBe(201);
    expect(body.name).toBe('form.csv');
    expect(dataset.status).toBe('READY');
    expect(dataset.split).toEqual({
      ratios: { train: 0.6, validation: 0.2, test: 0.2 },
      seed: 3,
      stratifyBy: 'plan',
    });
  });

  it('refuses split ratios that do not add up to 1, naming the field', async () => {
    const project = await newProject();

    const result = await uploadDataset(
      project.key,
      'x.csv',
      Buffer.from('a\n1\n'),
      {
        trainRatio: '0.9',
        validationRatio: '0.2',
        testRatio: '0',
      },
    );

    expect(result.status).toBe(400);
    expect(result.body.error?.message).toMatch(/add up to 1/);
  });

  it('fails a split stratified by a column the file does not have', async () => {
    const project = await newProject();

    const upload = await uploadDataset(
      project.key,
      's.csv',
      Buffer.from(goodCsv()),
      {
        trainRatio: '0.8',
        validationRatio: '0.1',
        testRatio: '0.1',
        stratifyBy: 'region',
      },
    );
    const dataset = await settledDataset(project.key, String(upload.body.id));

    expect(dataset.status).toBe('FAILED');
    expect(dataset.report!.problems[0]).toMatchObject({
      code: 'INVALID_OPTIONS',
      column: 'region',
    });
  });

  it('uploads through presigned part URLs and completes into a dataset', async () => {
    const project = await newProject();
    // Over one 5 MiB part: a multipart upload with two part URLs.
    const row = 'x,y\n';
    const lines = [row];
    while (lines.length * 16 < 6 * 1024 * 1024) {
      lines.push(`${lines.length},${(lines.length * 0.5).toFixed(1)}\n`);
    }
    const bytes = Buffer.from(lines.join(''));
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const created = await gql<{
      createDatasetUpload: {
        uploadId: string;
        url: string | null;
        parts: { partNumber: number; url: string }[];
        partSizeBytes: number;
      };
    }>(
      project.key,
      `mutation($input: CreateDatasetUploadInput!) { createDatasetUpload(input: $input) {
        uploadId url parts { partNumber url } partSizeBytes expiresAt } }`,
      { input: { name: 'direct.csv', sizeBytes: bytes.length, sha256 } },
    );
    const upload = created.data!.createDatasetUpload;
    const etags = [];
    for (const part of upload.parts) {
      const start = (part.partNumber - 1) * upload.partSizeBytes;
      const response = await fetch(part.url, {
        method: 'PUT',
        body: bytes.subarray(start, start + upload.partSizeBytes),
      });
      etags.push({
        partNumber: part.partNumber,
        etag: response.headers.get('etag')!,
      });
    }

    const incomplete = await gql(
      project.key,
      `mutation($input: CompleteDatasetUploadInput!) {
        completeDatasetUpload(input: $input) { id } }`,
      { input: { uploadId: upload.uploadId, parts: etags.slice(0, 1) } },
    );
    const completed = await gql<{
      completeDatasetUpload: { id: string; sha256: string };
    }>(
      project.key,
      `mutation($input: CompleteDatasetUploadInput!) {
        completeDatasetUpload(input: $input) { id sha256 } }`,
      { input: { uploadId: upload.uploadId, parts: etags } },
    );
    const dataset = await settledDataset(
      project.key,
      completed.data!.completeDatasetUpload.id,
    );

    expect(upload.url).toBeNull();
    expect(upload.parts).toHaveLength(2);
    expect(codeOf(incomplete)).toBe('BAD_USER_INPUT');
    expect(incomplete.errors?.[0].extensions?.field).toBe('input.parts');
    expect(completed.data!.completeDatasetUpload.sha256).toBe(sha256);
    expect(dataset.status).toBe('READY');
    expect(dataset.rowCount).toBe(lines.length - 1);
  });

  it('lists datasets filtered by status and name', async () => {
    const project = await newProject();
    const good = await upload(project.key, 'Orders 2024.csv', goodCsv());
    const bad = await upload(project.key, 'broken.csv', 'a,b\n1,"2\n');
    await settledDataset(project.key, good);
    await settledDataset(project.key, bad);
    const list = (filter: string) =>
      gql<{ datasets: { nodes: { id: string }[] } }>(
        project.key,
        `{ datasets(${filter}) { nodes { id } } }`,
      );

    const ready = await list('status: READY');
    const failed = await list('status: FAILED');
    const byName = await list('name: "orders"');

    expect(ready.data!.datasets.nodes.map((n) => n.id)).toEqual([good]);
    expect(failed.data!.datasets.nodes.map((n) => n.id)).toEqual([bad]);
    expect(byName.data!.datasets.nodes.map((n) => n.id)).toEqual([good]);
  });

  it('refuses to delete a dataset a live job uses, then deletes every object', async () => {
    const project = await newProject();
    const id = await upload(project.key, 'del.csv', goodCsv());
    await settledDataset(project.key, id);
    const env = JSON.parse(inject('platformEnv')) as NodeJS.ProcessEnv;
    const db = new Client({ connectionString: env.DATABASE_URL });
    await db.connect();
    // A queued job that reads the dataset (recorded, not sent to workers).
    const { rows } = await db.query(
      `INSERT INTO "Job" (id, "projectId", kind, status, "datasetIds")
       VALUES (gen_random_uuid(), $1, 'TRAIN', 'QUEUED', ARRAY[$2::uuid])
       RETURNING id`,
      [project.id, id],
    );
    const remove = () =>
      gql(project.key, 'mutation($id: ID!) { deleteDataset(id: $id) { id } }', {
        id,
      });

    const refused = await remove();
    await db.query(`UPDATE "Job" SET status = 'CANCELLED' WHERE id = $1`, [
      rows[0].id,
    ]);
    const deleted = await remove();
    const after = await gql(
      project.key,
      'query($id: ID!) { dataset(id: $id) { id } }',
      { id },
    );
    const objects = await fetch(
      `${env.S3_ENDPOINT}/${env.S3_BUCKET}?list-type=2&prefix=projects/${project.id}/datasets/${id}/`,
    );
    await db.end();

    expect(codeOf(refused)).toBe('CONFLICT');
    expect(refused.errors?.[0].message).toContain(rows[0].id);
    expect(deleted.errors).toBeUndefined();
    expect(codeOf(after)).toBe('NOT_FOUND');
    expect(await objects.text()).not.toContain('<Key>');
  });

  it('keeps nothing when the client cuts an upload off halfway', async () => {
    const project = await newProject();
    const controller = new AbortController();
    const chunk = randomBytes(1024 * 1024);
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(stream) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        sent += 1;
        if (sent === 12) {
          controller.abort();
        }
        stream.enqueue(chunk);
      },
    });

    const outcome = await fetch(`${apiUrl()}/v1/datasets?name=cut`, {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${project.key}`,
        'Content-Type': 'application/octet-stream',
      },
      body,
      duplex: 'half',
      signal: controller.signal,
    } as RequestInit).catch((error: Error) => error);
    const env = JSON.parse(inject('platformEnv')) as NodeJS.ProcessEnv;
    const db = new Client({ connectionString: env.DATABASE_URL });
    await db.connect();
    let sessions: { state: string }[] = [];
    for (let i = 0; i < 50; i += 1) {
      ({ rows: sessions } = await db.query(
        'SELECT state FROM "UploadSession" WHERE "projectId" = $1',
        [project.id],
      ));
      if (sessions.every((s) => s.state === 'ABORTED')) {
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const datasets = await db.query(
      'SELECT id FROM "Dataset" WHERE "projectId" = $1',
      [project.id],
    );
    await db.end();

    expect(outcome).toBeInstanceOf(Error);
    expect(sessions.length).toBeGreaterThan(0);
    expect(sessions.every((s) => s.state === 'ABORTED')).toBe(true);
    expect(datasets.rows).toEqual([]);
  });
});
