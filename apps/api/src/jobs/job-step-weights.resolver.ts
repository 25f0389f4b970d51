import { Inject } from '@nestjs/common';
import {
  Args,
  Field,
  Int,
  ObjectType,
  Parent,
  ResolveField,
  Resolver,
} from '@nestjs/graphql';

import type { PrismaClient } from '#libs/db';
import { ChorusError } from '#libs/errors';

import { GraphQLJSON } from '../common/json.scalar';
import { MAX_PAGE_SIZE } from '../common/pagination';
import { PRISMA } from '../core/tokens';
import { Job } from './job.types';

@ObjectType({
  description: 'The effective weight of each task at one training step.',
})
export class JobStepWeights {
  @Field(() => Int, { description: 'Global step, from 0.' })
  step!: number;

  @Field(() => Int, { description: 'Epoch, from 1 as in metrics.' })
  epoch!: number;

  @Field(() => GraphQLJSON, { description: '{ task: weight }' })
  weights!: Record<string, number>;
}

/** Job.stepWeights: a training job's per-step task weights, in step order. */
@Resolver(() => Job)
export class JobStepWeightsResolver {
  constructor(@Inject(PRISMA) private readonly prisma: PrismaClient) {}

  @ResolveField(() => [JobStepWeights], {
    description:
      'Task weights per training step, from step `from` on, at most `limit` ' +
      '(1 to 100). Every step below 1,000 is kept, then 1 in 10 up to ' +
      '10,000, 1 in 100 up to 100,000, and so on.',
    complexity: ({ args, childComplexity }) =>
      1 + (args.limit ?? MAX_PAGE_SIZE) * childComplexity,
  })
  async stepWeights(
    @Parent() job: Job,
    @Args('from', { type: () => Int, defaultValue: 0 }) from: number,
    @Args('limit', { type: () => Int, defaultValue: MAX_PAGE_SIZE })
    limit: number,
  ) {
    if (from < 0) {
      throw ChorusError.badInput('from', 'from must be a step, 0 or more.');
    }
    if (limit < 1 || limit > MAX_PAGE_SIZE) {
      throw ChorusError.badInput(
        'limit',
        `limit must be from 1 to ${MAX_PAGE_SIZE}.`,
      );
    }
    const rows = await this.prisma.jobStepWeights.findMany({
      where: { jobId: job.id, step: { gte: from } },
      orderBy: { step: 'asc' },
      take: limit,
    });

    return rows.map((row) => ({
      step: row.step,
      epoch: row.epoch,
      weights: row.weights as Record<string, number>,
    }));
  }
}
