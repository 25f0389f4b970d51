import { createHash, randomBytes } from 'node:crypto';

import { describe, expect, it } from 'vitest';

import { apiUrl, gql, newProject, uploadDataset } from './support/client';

describe('dataset uploads over REST', () => {
  it('streams a multipart-sized file in and back out, whole and by range', async () => {
    const project = await newProject();
    // 12 MiB: more than two 5 MiB parts on the test platform.
    const bytes = randomBytes(12 * 1024 * 1024);
    const sha256 = createHash('sha256').update(bytes).digest('hex');

    const upload = await uploadDataset(project.key, 'big', bytes, { sha256 });
    const id = String(upload.body.id);
    const whole = await fetch(`${apiUrl()}/v1/datasets/${id}/file`, {
      headers: { Authorization: `Bearer ${project.key}` },
    });
    const wholeBytes = Buffer.from(await whole.arrayBuffer());
    const part = await fetch(`${apiUrl()}/v1/datasets/${id}/file`, {
      headers: {
        Authorization: `Bearer ${project.key}`,
        Range: 'bytes=5242870-5242889',
      },
    });
    const listed = await gql<{
      dataset: { sizeBytes: number; sha256: string };
    }>(
      project.key,
      'query($id: ID!) { dataset(id: $id) { sizeBytes sha256 status } }',
      { id },
    );

    expect(upload.status).toBe(201);
    expect(upload.body).toMatchObject({ sha256, sizeBytes: bytes.length });
    expect(upload.body).not.toHaveProperty('objectKey');
    expect(whole.headers.get('x-content-sha256')).toBe(sha256);
    expect(wholeBytes.equals(bytes)).toBe(true);
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(
      `bytes 5242870-5242889/${bytes.length}`,
    );
    expect(
      Buffer.from(await part.arrayBuffer()).equals(
        bytes.subarray(5242870, 5242890),
      ),
    ).toBe(true);
    expect(listed.data?.dataset).toMatchObject({
      sizeBytes: bytes.length,
      sha256,
    });
  });

  it('refuses a wrong sha256 and keeps nothing', async () => {
    const project = await newProject();

    const upload = await uploadDataset(
      project.key,
      'bad-sum',
      randomBytes(2048),
      {
        sha256: 'a'.repeat(64),
      },
    );
    const listed = await gql<{ datasets: { nodes: unknown[] } }>(
      project.key,
      '{ datasets { nodes { id } } }',
    );

    expect(upload.status).toBe(400);
    expect(upload.body.error).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'sha256',
    });
    expect(listed.data?.datasets.nodes).toEqual([]);
  });

  it('answers 413 past the size limit, during the stream as well as up front', async () => {
    const project = await newProject();
    const limit = 110 * 1024 * 1024;
    const chunk = randomBytes(1024 * 1024);
    let sent = 0;
    // No Content-Length: the limit must hold while streaming.
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent > limit + chunk.length) {
          controller.close();

          return;
        }
        sent += chunk.length;
        controller.enqueue(chunk);
      },
    });

    const streamed = await uploadDataset(project.key, 'huge', body);
    const declared = await fetch(`${apiUrl()}/v1/datasets?name=huge`, {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${project.key}`,
        'Content-Type': 'application/octet-stream',
        'Content-Length': String(limit + 1),
      },
      body: randomBytes(16),
    }).catch((error: Error) => error);
    const listed = await gql<{ datasets: { nodes: unknown[] } }>(
      project.key,
      '{ datasets { nodes { id } } }',
    );

    expect(streamed.status).toBe(413);
    expect(streamed.body.error?.code).toBe('PAYLOAD_TOO_LARGE');
    expect(declared instanceof Error || declared.status === 413).toBe(true);
    expect(listed.data?.datasets.nodes).toEqual([]);
  });

  it('asks for a name and a non-JSON body, naming what is wrong', async () => {
    const project = await newProject();

    const noName = await fetch(`${apiUrl()}/v1/datasets`, {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${project.key}`,
        'Content-Type': 'text/csv',
      },
      body: 'a,b\n1,2\n',
    });
    const json = await fetch(`${apiUrl()}/v1/datasets?name=x`, {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${project.key}`,
        'Content-Type': 'application/json',
      },
      body: '{"a":1}',
    });
    const noKey = await fetch(`${apiUrl()}/v1/datasets?name=x`, {
      method: 'POST',
      body: 'a',
    });

    expect(noName.status).toBe(400);
    expect(await noName.json()).toMatchObject({
      error: { code: 'BAD_USER_INPUT', field: 'query.name' },
    });
    expect(json.status).toBe(400);
    expect(await json.json()).toMatchObject({
      error: { field: 'Content-Type' },
    });
    expect(noKey.status).toBe(401);
  });

  it('answers 416 for a range outside the file', async () => {
    const project = await newProject();
    const upload = await uploadDataset(project.key, 'small', randomBytes(100));

    const response = await fetch(
      `${apiUrl()}/v1/datasets/${String(upload.body.id)}/file`,
      {
        headers: {
          Authorization: `Bearer ${project.key}`,
          Range: 'bytes=500-',
        },
      },
    );

    expect(response.status).toBe(416);
    expect(await response.json()).toMatchObject({
      error: { code: 'RANGE_NOT_SATISFIABLE', field: 'Range' },
    });
  });
});
