import { inject } from 'vitest';

export const apiUrl = () => inject('apiUrl');
export const adminKey = () => inject('adminKey');

export interface GraphqlResult<T = Record<string, unknown>> {
  status: number;
  data?: T | null;
  errors?: {
    message: string;
    path?: string[];
    extensions?: { code?: string; field?: string; [key: string]: unknown };
  }[];
}

/** POSTs one GraphQL operation, as a frontend would. */
export async function gql<T = Record<string, unknown>>(
  key: string | undefined,
  query: string,
  variables?: Record<string, unknown>,
  base = apiUrl(),
): Promise<GraphqlResult<T>> {
  const response = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      ...(key ? { Authorization: `Bearer ${key}` } : {}),
    },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as GraphqlResult<T>;

  return { ...body, status: response.status };
}

/** The extensions.code of the first error, or undefined. */
export const codeOf = (result: GraphqlResult) =>
  result.errors?.[0]?.extensions?.code;

/**
 * Resolves once a jobEvents subscription that collects into `events` is
 * live (graphql-ws does not acknowledge a subscribe): queues a cheap job in
 * the key's project and waits for any event of it. Returns that job's id,
 * whose events the caller leaves out of what it checks.
 */
export async function jobEventsLive(
  key: string,
  events: readonly { jobId: string }[],
  timeoutMs = 20_000,
): Promise<string> {
  const probe = await gql<{ sweepUploads: { id: string } }>(
    key,
    'mutation { sweepUploads { id } }',
  );
  const jobId = probe.data!.sweepUploads.id;
  const deadline = Date.now() + timeoutMs;
  while (!events.some((event) => event.jobId === jobId)) {
    if (Date.now() > deadline) {
      throw new Error(`No event of job ${jobId} in ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }

  return jobId;
}

let counter = 0;

/** A new project with its ADMIN key, made by the platform admin. */
export async function newProject(name = `project-${++counter}`) {
  const result = await gql<{
    createProject: { project: { id: string }; adminKey: { key: string } };
  }>(
    adminKey(),
    `mutation($name: String!) {
      createProject(input: { name: $name }) {
        project { id }
        adminKey { key }
      }
    }`,
    { name: `${name}-${Date.now()}` },
  );
  if (!result.data) {
    throw new Error(`createProject failed: ${JSON.stringify(result.errors)}`);
  }

  return {
    id: result.data.createProject.project.id,
    key: result.data.createProject.adminKey.key,
  };
}

/** Uploads bytes through REST; returns the response status and JSON body. */
export async function uploadDataset(
  key: string,
  name: string,
  body: Buffer | ReadableStream<Uint8Array>,
  query: Record<string, string> = {},
) {
  const params = new URLSearchParams({ name, ...query });
  const response = await fetch(`${apiUrl()}/v1/datasets?${params}`, {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${key}`,
      'Content-Type': 'application/octet-stream',
    },
    body,
    duplex: 'half',
  } as RequestInit);

  return {
    status: response.status,
    body: (await response.json()) as Record<string, unknown> & {
      error?: { code: string; message: string; field?: string };
    },
  };
}

export interface DatasetView {
  id: string;
  status: string;
  format?: string;
  rowCount?: number;
  shardCount?: number;
  schema?: {
    rowCount: number;
    columns: {
      name: string;
      type: string;
      vocabulary?: string[];
      statistics: Record<string, unknown>;
    }[];
  };
  report?: {
    ok: boolean;
    problems: {
      code: string;
      severity: string;
      message: string;
      row?: number;
      column?: string;
      examples: unknown[];
    }[];
  };
  sample?: Record<string, unknown>[];
  split?: unknown;
}

/** Polls a dataset until ingestion has decided: READY or FAILED. */
export async function settledDataset(
  key: string,
  id: string,
  timeoutMs = 120_000,
): Promise<DatasetView> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const result = await gql<{ dataset: DatasetView }>(
      key,
      `query($id: ID!) { dataset(id: $id) {
        id status format rowCount shardCount schema report sample split } }`,
      { id },
    );
    const dataset = result.data?.dataset;
    if (!dataset) {
      throw new Error(JSON.stringify(result.errors));
    }
    if (dataset.status === 'READY' || dataset.status === 'FAILED') {
      return dataset;
    }
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
  throw new Error(`Dataset ${id} did not settle within ${timeoutMs} ms`);
}
