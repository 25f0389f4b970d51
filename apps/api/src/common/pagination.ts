import { ArgsType, Field, Int, ObjectType } from '@nestjs/graphql';
import { Type } from '@nestjs/common';

import { ChorusError } from '#libs/errors';

export const MAX_PAGE_SIZE = 100;

@ArgsType()
export class PageArgs {
  @Field(() => Int, {
    nullable: true,
    description: `Page size, 1 to ${MAX_PAGE_SIZE} (default 20).`,
  })
  first?: number;

  @Field({
    nullable: true,
    description: 'endCursor of the previous page.',
  })
  after?: string;
}

@ObjectType()
export class PageInfo {
  @Field({ nullable: true })
  endCursor?: string;

  @Field()
  hasNextPage!: boolean;
}

/** The GraphQL type of a page of T: nodes plus where the next page starts. */
export function Paginated<T>(node: Type<T>) {
  @ObjectType({ isAbstract: true })
  abstract class Page {
    @Field(() => [node])
    nodes!: T[];

    @Field(() => PageInfo)
    pageInfo!: PageInfo;
  }

  return Page;
}

/** Cost estimate for a paginated field: the page size times its children. */
export const pageComplexity = ({
  args,
  childComplexity,
}: {
  args: { first?: number };
  childComplexity: number;
}) => 1 + (args.first ?? 20) * childComplexity;

interface Cursor {
  createdAt: Date;
  id: string;
}

/**
 * Validates page arguments and turns them into a Prisma query fragment that
 * pages newest first by (createdAt, id).
 */
export function pageQuery(args: PageArgs) {
  const take = args.first ?? 20;
  if (!Number.isInteger(take) || take < 1 || take > MAX_PAGE_SIZE) {
    throw ChorusError.badInput(
      'first',
      `first must be a whole number from 1 to ${MAX_PAGE_SIZE}.`,
    );
  }
  const cursor = args.after ? decodeCursor(args.after) : undefined;

  return {
    take: take + 1,
    orderBy: [{ createdAt: 'desc' as const }, { id: 'desc' as const }],
    where: cursor
      ? {
          OR: [
            { createdAt: { lt: cursor.createdAt } },
            { createdAt: cursor.createdAt, id: { lt: cursor.id } },
          ],
        }
      : {},
  };
}

/** Cuts the extra row pageQuery asked for and builds the page. */
export function toPage<T extends Cursor>(rows: T[], args: PageArgs) {
  const size = args.first ?? 20;
  const nodes = rows.slice(0, size);
  const last = nodes.at(-1);

  return {
    nodes,
    pageInfo: {
      hasNextPage: rows.length > size,
      endCursor: last ? encodeCursor(last) : undefined,
    },
  };
}

function encodeCursor(row: Cursor): string {
  return Buffer.from(`${row.createdAt.toISOString()}|${row.id}`).toString(
    'base64url',
  );
}

function decodeCursor(value: string): Cursor {
  const [at, id] = Buffer.from(value, 'base64url').toString().split('|');
  const createdAt = new Date(at);
  if (!id || Number.isNaN(createdAt.getTime())) {
    throw ChorusError.badInput(
      'after',
      'after must be the endCursor of a previous page.',
    );
  }

  return { createdAt, id };
}
