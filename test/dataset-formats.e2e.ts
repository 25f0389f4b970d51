import { describe, expect, inject, it } from 'vitest';

import {
  readShard,
  type ShardManifest,
  unpackSplitCodes,
} from '#libs/datasets';

import { parquetBytes } from '../libs/datasets/src/testing/parquet-writer';
import { newProject, settledDataset, uploadDataset } from './support/client';

/** Reads an object straight from the test S3 server. */
async function object(key: string): Promise<Buffer> {
  const env = JSON.parse(inject('platformEnv')) as NodeJS.ProcessEnv;
  const response = await fetch(`${env.S3_ENDPOINT}/${env.S3_BUCKET}/${key}`);
  if (response.status !== 200) {
    throw new Error(`GET ${key}: ${response.status}`);
  }

  return Buffer.from(await response.arrayBuffer());
}

/** Every row of a READY dataset, read back from its stored shards. */
async function shardRows(projectId: string, datasetId: string) {
  const prefix = `projects/${projectId}/datasets/${datasetId}/shards/`;
  const manifest = JSON.parse(
    (await object(`${prefix}manifest.json`)).toString(),
  ) as ShardManifest;
  const columns: Record<string, number[]> = {};
  let splitRows = 0;
  for (const info of manifest.shards) {
    const batch = readShard(await object(`${prefix}${info.name}`), {
      sha256: info.sha256,
    });
    if (info.split) {
      splitRows += unpackSplitCodes(info.split, batch.rowCount).length;
    }
    for (const [name, values] of Object.entries(batch.columns)) {
      (columns[name] ??= []).push(...Array.from(values));
    }
  }

  return { manifest, columns, splitRows };
}

describe('dataset formats end to end', () => {
  it('reads a CSV back from its shards with exactly the parsed values', async () => {
    const project = await newProject();
    const rows = Array.from({ length: 50 }, (_, i) => ({
      score: i * 0.25,
      count: i % 7,
      colour: ['red', 'blue'][i % 2],
    }));
    const csv = `score,count,colour\n${rows
      .map((r) => `${r.score},${r.count},${r.colour}`)
      .join('\n')}\n`;

    const upload = await uploadDataset(
      project.key,
      'values.csv',
      Buffer.from(csv),
    );
    const dataset = await settledDataset(project.key, String(upload.body.id));
    const back = await shardRows(project.id, dataset.id);

    expect(dataset.status).toBe('READY');
    expect(back.manifest.rowCount).toBe(50);
    expect(back.splitRows).toBe(50);
    expect(back.columns.score).toEqual(rows.map((r) => r.score));
    expect(back.columns.count).toEqual(rows.map((r) => r.count));
    const vocabulary = dataset.schema!.columns.find(
      (c) => c.name === 'colour',
    )!.vocabulary!;
    expect(back.columns.colour.map((code) => vocabulary[code])).toEqual(
      rows.map((r) => r.colour),
    );
  });

  it('ingests JSON Lines with types and missing values', async () => {
    const project = await newProject();
    const lines = Array.from({ length: 40 }, (_, i) =>
      JSON.stringify({
        id: i,
        price: i === 3 ? null : i * 1.5,
        active: i % 3 === 0,
        city: ['Oslo', 'Lima', 'Pune'][i % 3],
      }),
    ).join('\n');

    const upload = await uploadDataset(
      project.key,
      'rows.jsonl',
      Buffer.from(lines),
    );
    const dataset = await settledDataset(project.key, String(upload.body.id));
    const back = await shardRows(project.id, dataset.id);

    expect(dataset.status).toBe('READY');
    expect(dataset.format).toBe('jsonl');
    const types = Object.fromEntries(
      dataset.schema!.columns.map((c) => [c.name, c.type]),
    );
    expect(types).toMatchObject({
      id: 'integer',
      price: 'numeric',
      active: 'boolean',
      city: 'categorical',
    });
    expect(Number.isNaN(back.columns.price[3])).toBe(true);
    expect(back.columns.price[4]).toBe(6);
  });

  it('ingests Parquet row group by row group', async () => {
    const project = await newProject();
    const n = 120;
    const bytes = parquetBytes(
      [
        {
          name: 'x',
          type: 'double',
          values: Array.from({ length: n }, (_, i) => i / 10),
        },
        {
          name: 'k',
          type: 'int64',
          values: Array.from({ length: n }, (_, i) => i % 5),
        },
        {
          name: 'label',
          type: 'string',
          values: Array.from({ length: n }, (_, i) => (i % 2 ? 'yes' : 'no')),
        },
      ],
      50,
    );

    const upload = await uploadDataset(project.key, 'table.parquet', bytes);
    const dataset = await settledDataset(project.key, String(upload.body.id));
    const back = await shardRows(project.id, dataset.id);

    expect(dataset.status).toBe('READY');
    expect(dataset.format).toBe('parquet');
    expect(dataset.rowCount).toBe(n);
    expect(back.columns.x).toEqual(
      Array.from({ length: n }, (_, i) => Math.fround(i / 10)),
    );
  });

  it('leaves no shard objects for a dataset that fails', async () => {
    const project = await newProject();
    const upload = await uploadDataset(
      project.key,
      'late-error.csv',
      Buffer.from(
        `a,b\n${Array.from({ length: 3000 }, (_, i) => `${i},${i}`).join('\n')}\n1,"broken\n`,
      ),
    );
    const dataset = await settledDataset(project.key, String(upload.body.id));
    const env = JSON.parse(inject('platformEnv')) as NodeJS.ProcessEnv;
    const listing = await fetch(
      `${env.S3_ENDPOINT}/${env.S3_BUCKET}?list-type=2&prefix=projects/${project.id}/datasets/${dataset.id}/shards/`,
    );

    expect(dataset.status).toBe('FAILED');
    expect(await listing.text()).not.toContain('<Key>');
  });
});
