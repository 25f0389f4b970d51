import { describe, expect, it } from 'vitest';

import { adminKey, apiUrl, codeOf, gql, newProject } from './support/client';

const PROJECT_NAMES = `{ projects(first: 100) { nodes { name } } }`;

async function projectNames(): Promise<string[]> {
  const result = await gql<{ projects: { nodes: { name: string }[] } }>(
    adminKey(),
    PROJECT_NAMES,
  );

  return result.data!.projects.nodes.map((node) => node.name);
}

describe('GraphQL', () => {
  it('answers BAD_USER_INPUT naming the field for invalid input', async () => {
    const project = await newProject();

    const empty = await gql(
      project.key,
      `mutation { createApiKey(input: { name: "  ", scopes: [READ] }) { key } }`,
    );
    const noScopes = await gql(
      project.key,
      `mutation { createApiKey(input: { name: "k", scopes: [] }) { key } }`,
    );
    const badId = await gql(project.key, `{ job(id: "42") { id } }`);

    expect(codeOf(empty)).toBe('BAD_USER_INPUT');
    expect(empty.errors?.[0].extensions?.field).toBe('input.name');
    expect(noScopes.errors?.[0].extensions?.field).toBe('input.scopes');
    expect(noScopes.errors?.[0].message).toMatch(/READ, WRITE, ADMIN/);
    expect(badId.errors?.[0].extensions?.field).toBe('id');
  });

  it('answers BAD_USER_INPUT for a value the schema does not allow', async () => {
    const project = await newProject();

    const result = await gql(
      project.key,
      `mutation { createApiKey(input: { name: "k", scopes: [ROOT] }) { key } }`,
    );

    expect(codeOf(result)).toBe('BAD_USER_INPUT');
    expect(result.errors?.[0].message).toMatch(/ROOT.*ApiKeyScope/);
  });

  it('rejects an over-deep operation before any resolver runs', async () => {
    const name = `too-deep-${Date.now()}`;

    // createProject > project > apiKeys > nodes > id is 5 levels; the test
    // platform allows 4. A resolver that ran would have created the project.
    const deep = await gql(
      adminKey(),
      `mutation($name: String!) { createProject(input: { name: $name }) {
        project { apiKeys { nodes { id } } } } }`,
      { name },
    );
    const allowed = await gql(
      adminKey(),
      `{ apiKeys { nodes { id } pageInfo { hasNextPage } } }`,
    );

    expect(deep.status).toBe(400);
    expect(codeOf(deep)).toBe('QUERY_TOO_COMPLEX');
    expect(deep.errors?.[0].message).toMatch(/5 levels deep; the limit is 4/);
    expect(await projectNames()).not.toContain(name);
    expect(allowed.errors).toBeUndefined();
  });

  it('counts fragments when measuring depth', async () => {
    const result = await gql(
      adminKey(),
      `query { me { ...P } }
       fragment P on Me { project { apiKeys { nodes { id } } } }`,
    );

    expect(codeOf(result)).toBe('QUERY_TOO_COMPLEX');
  });

  it('rejects an over-costly operation before any resolver runs', async () => {
    const name = `costly-${Date.now()}`;
    const fields = Array.from(
      { length: 150 },
      (_, i) =>
        `p${i}: createProject(input: { name: "${name}" }) { project { id name createdAt } }`,
    ).join('\n');

    const result = await gql(adminKey(), `mutation { ${fields} }`);

    expect(result.status).toBe(400);
    expect(codeOf(result)).toBe('QUERY_TOO_COMPLEX');
    expect(result.errors?.[0].message).toMatch(/the limit is 400/);
    expect(await projectNames()).not.toContain(name);
  });

  it('refuses a GET mutation and a simple cross-site POST (CSRF prevention)', async () => {
    const response = await fetch(`${apiUrl()}/graphql`, {
      method: 'POST',
      headers: {
        'Content-Type': 'text/plain',
        Authorization: `Bearer ${adminKey()}`,
      },
      body: JSON.stringify({ query: '{ me { platformAdmin } }' }),
    });

    expect(response.status).toBe(400);
    expect(await response.text()).toMatch(/CSRF|preflight/i);
  });

  it('pages through a list with cursors', async () => {
    const project = await newProject();
    for (let i = 0; i < 3; i += 1) {
      await gql(
        project.key,
        `mutation { createApiKey(input: { name: "k${i}", scopes: [READ] }) { key } }`,
      );
    }
    const page = `query($after: String) { apiKeys(first: 2, after: $after) {
      nodes { name } pageInfo { endCursor hasNextPage } } }`;
    type Page = {
      apiKeys: {
        nodes: { name: string }[];
        pageInfo: { endCursor: string; hasNextPage: boolean };
      };
    };

    const first = await gql<Page>(project.key, page);
    const second = await gql<Page>(project.key, page, {
      after: first.data!.apiKeys.pageInfo.endCursor,
    });
    const tooBig = await gql(
      project.key,
      `{ apiKeys(first: 101) { nodes { id } } }`,
    );

    expect(first.data!.apiKeys.pageInfo.hasNextPage).toBe(true);
    expect(second.data!.apiKeys.pageInfo.hasNextPage).toBe(false);
    const names = [...first.data!.apiKeys.nodes, ...second.data!.apiKeys.nodes]
      .map((node) => node.name)
      .sort();
    expect(names).toEqual(['admin', 'k0', 'k1', 'k2']);
    expect(codeOf(tooBig)).toBe('BAD_USER_INPUT');
  });
});
