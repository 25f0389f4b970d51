import {
  ArgsType,
  Field,
  Float,
  GraphQLISODateTime,
  ID,
  Int,
  ObjectType,
  registerEnumType,
} from '@nestjs/graphql';
import { GraphQLJSON } from '../common/json.scalar';

import { JobCapability, JobKind, JobStatus } from '#libs/db';

import { PageArgs, Paginated } from '../common/pagination';

registerEnumType(JobKind, { name: 'JobKind' });
registerEnumType(JobStatus, { name: 'JobStatus' });
registerEnumType(JobCapability, { name: 'JobCapability' });

@ObjectType()
export class Job {
  @Field(() => ID)
  id!: string;

  @Field(() => JobKind)
  kind!: JobKind;

  @Field(() => JobStatus)
  status!: JobStatus;

  @Field(() => JobCapability)
  capability!: JobCapability;

  @Field(() => Int)
  priority!: number;

  @Field(() => Float, { description: 'From 0 to 1.' })
  progress!: number;

  @Field(() => Int, { description: 'How many times a worker started it.' })
  attempts!: number;

  @Field(() => String, { nullable: true })
  workerId?: string | null;

  @Field(() => GraphQLJSON, { nullable: true })
  result?: unknown;

  @Field(() => GraphQLJSON, {
    nullable: true,
    description: 'Why the job failed: code and message.',
  })
  error?: unknown;

  @Field(() => GraphQLISODateTime)
  createdAt!: Date;

  @Field(() => GraphQLISODateTime, { nullable: true })
  startedAt?: Date | null;

  @Field(() => GraphQLISODateTime, { nullable: true })
  finishedAt?: Date | null;
}

@ObjectType()
export class JobPage extends Paginated(Job) {}

@ArgsType()
export class JobListArgs extends PageArgs {
  @Field(() => JobStatus, { nullable: true })
  status?: JobStatus;

  @Field(() => JobKind, { nullable: true })
  kind?: JobKind;

  @Field(() => ID, { nullable: true })
  modelId?: string;
}

@ObjectType({ description: 'A change of a job, delivered as it happens.' })
export class JobEvent {
  @Field(() => ID)
  jobId!: string;

  @Field(() => JobKind)
  kind!: JobKind;

  @Field(() => JobStatus)
  status!: JobStatus;

  @Field(() => Float)
  progress!: number;

  @Field({ nullable: true })
  message?: string;

  @Field(() => GraphQLJSON, { nullable: true })
  metrics?: Record<string, number>;

  @Field(() => GraphQLISODateTime)
  at!: Date;
}
