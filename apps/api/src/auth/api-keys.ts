import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

import type { ApiKeyScope } from '#libs/db';

/** Keys look like chorus_<43 base64url characters> (256 random bits). */
export function generateApiKey(): string {
  return `chorus_${randomBytes(32).toString('base64url')}`;
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** What users see to tell keys apart; never enough to use the key. */
export function keyPrefix(key: string): string {
  return key.slice(0, 14);
}

/** Compares two hex digests in constant time. */
export function sameHash(a: string, b: string): boolean {
  const left = Buffer.from(a, 'hex');
  const right = Buffer.from(b, 'hex');

  return left.length === right.length && timingSafeEqual(left, right);
}

/** A key (new unless given) and the row fields that store it, never the key itself. */
export function newApiKey(
  name: string,
  scopes: ApiKeyScope[],
  key = generateApiKey(),
) {
  return {
    key,
    data: { name, prefix: keyPrefix(key), hash: hashApiKey(key), scopes },
  };
}
