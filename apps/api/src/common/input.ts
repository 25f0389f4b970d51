import { z } from 'zod';

import { ChorusError } from '#libs/errors';

/**
 * Validates input against a zod schema; the first problem becomes a
 * BAD_USER_INPUT error naming the field (prefixed, e.g. "input.name").
 */
export function parseInput<S extends z.ZodType>(
  schema: S,
  value: unknown,
  prefix = 'input',
): z.infer<S> {
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    const field = [prefix, ...issue.path.map(String)].join('.');
    throw ChorusError.badInput(field, `${field}: ${issue.message}`);
  }

  return result.data;
}

/** A UUID argument; anything else is reported as the named field. */
export function parseId(value: string, field = 'id'): string {
  if (!z.uuid().safeParse(value).success) {
    throw ChorusError.badInput(field, `${field} must be a UUID.`);
  }

  return value;
}

/** A required, trimmed name of 1 to `max` characters. */
export function nameField(max: number) {
  return z
    .string({ error: 'is required' })
    .trim()
    .min(1, 'must not be empty')
    .max(max, `must be at most ${max} characters`);
}
