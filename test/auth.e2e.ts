import { describe, expect, it } from 'vitest';

import { adminKey, codeOf, gql, newProject } from './support/client';

const ME = '{ me { project { id } apiKey { id scopes } platformAdmin } }';

describe('API keys', () => {
  it('creates a key, uses it, and refuses it within a second of revocation', async () => {
    const project = await newProject();
    const created = await gql<{
      createApiKey: { key: string; apiKey: { id: string; prefix: string } };
    }>(
      project.key,
      `mutation { createApiKey(input: { name: "ci", scopes: [READ] }) {
        key apiKey { id prefix } } }`,
    );
    const { key, apiKey } = created.data!.createApiKey;
    expect(key.startsWith(apiKey.prefix)).toBe(true);

    const before = await gql<{ me: { project: { id: string } } }>(key, ME);
    expect(before.data?.me.project.id).toBe(project.id);

    const revoked = await gql(
      project.key,
      `mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt } }`,
      { id: apiKey.id },
    );
    expect(revoked.errors).toBeUndefined();
    const revokedAt = Date.now();

    const after = await gql(key, ME);
    expect(Date.now() - revokedAt).toBeLessThan(1000);
    expect(after.status).toBe(401);
    expect(codeOf(after)).toBe('UNAUTHENTICATED');
  });

  it('answers UNAUTHENTICATED with 401 for a missing, malformed or unknown key', async () => {
    for (const key of [undefined, 'not-a-key', `chorus_${'x'.repeat(43)}`]) {
      const result = await gql(key, ME);

      expect(result.status, String(key)).toBe(401);
      expect(codeOf(result), String(key)).toBe('UNAUTHENTICATED');
      expect(result.data ?? null).toBeNull();
    }
  });

  it('refuses an expired key', async () => {
    const project = await newProject();
    const expiresAt = new Date(Date.now() + 1500).toISOString();
    const created = await gql<{ createApiKey: { key: string } }>(
      project.key,
      `mutation($at: DateTime!) { createApiKey(input: {
        name: "short", scopes: [READ], expiresAt: $at }) { key } }`,
      { at: expiresAt },
    );
    const key = created.data!.createApiKey.key;
    expect(codeOf(await gql(key, ME))).toBeUndefined();

    await new Promise((resolve) => setTimeout(resolve, 1600));

    expect(codeOf(await gql(key, ME))).toBe('UNAUTHENTICATED');
  });

  it('answers FORBIDDEN, naming the scope, when a READ key writes', async () => {
    const project = await newProject();
    const created = await gql<{ createApiKey: { key: string } }>(
      project.key,
      `mutation { createApiKey(input: { name: "r", scopes: [READ] }) { key } }`,
    );
    const reader = created.data!.createApiKey.key;

    const result = await gql(
      reader,
      `mutation { createApiKey(input: { name: "x", scopes: [ADMIN] }) { key } }`,
    );

    expect(codeOf(result)).toBe('FORBIDDEN');
    expect(result.errors?.[0].message).toMatch(/ADMIN scope/);
  });

  it('lets only platform admins create projects', async () => {
    const project = await newProject();

    const denied = await gql(
      project.key,
      `mutation { createProject(input: { name: "nope" }) { project { id } } }`,
    );
    const me = await gql<{ me: { platformAdmin: boolean } }>(adminKey(), ME);

    expect(codeOf(denied)).toBe('FORBIDDEN');
    expect(me.data?.me.platformAdmin).toBe(true);
  });
});
