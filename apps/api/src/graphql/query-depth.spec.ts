import { Kind, OperationDefinitionNode, parse } from 'graphql';
import { describe, expect, it } from 'vitest';

import { operationDepth } from './query-depth';

function depth(query: string): number {
  const document = parse(query);
  const operation = document.definitions.find(
    (d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION,
  )!;

  return operationDepth(document, operation);
}

describe('operationDepth', () => {
  it('counts nested fields', () => {
    expect(depth('{ a }')).toBe(1);
    expect(depth('{ a { b { c } } d }')).toBe(3);
  });

  it('follows fragments and inline fragments', () => {
    expect(depth('{ a { ...F } } fragment F on T { b { c } }')).toBe(3);
    expect(depth('{ a { ... on T { b } } }')).toBe(2);
  });

  it('does not loop on a fragment that spreads itself', () => {
    expect(depth('{ a { ...F } } fragment F on T { b { ...F } }')).toBe(2);
  });
});
