import {
  Field,
  GraphQLISODateTime,
  ID,
  InputType,
  Int,
  ObjectType,
  registerEnumType,
} from '@nestjs/graphql';

import {
  FederatedParticipantKind,
  FederatedRoundStatus,
  FederatedRunStatus,
} from '#libs/db';

import { GraphQLJSON } from '../common/json.scalar';
import { Paginated } from '../common/pagination';

registerEnumType(FederatedRunStatus, { name: 'FederatedRunStatus' });
registerEnumType(FederatedParticipantKind, {
  name: 'FederatedParticipantKind',
});
registerEnumType(FederatedRoundStatus, { name: 'FederatedRoundStatus' });

@InputType()
export class FederatedParticipantInput {
  @Field({
    nullable: true,
    description:
      "Unique in the run. Default: the dataset's name; required for external clients.",
  })
  name?: string;

  @Field(() => ID, {
    nullable: true,
    description:
      "A silo: a READY dataset of this project with the model's input and " +
      'target columns, trained on by our workers.',
  })
  datasetId?: string;

  @Field({
    nullable: true,
    description:
      'An external client that trains elsewhere with the SDK; it gets a token scoped to this run.',
  })
  external?: boolean;
}

@ObjectType()
export class FederatedParticipant {
  @Field(() => ID)
  id!: string;

  @Field()
  name!: string;

  @Field(() => FederatedParticipantKind)
  kind!: FederatedParticipantKind;

  @Field(() => ID, { nullable: true })
  datasetId?: string | null;

  @Field(() => String, {
    nullable: true,
    description: 'First characters of an external client token.',
  })
  tokenPrefix?: string | null;
}

@ObjectType()
export class FederatedRound {
  @Field(() => Int)
  number!: number;

  @Field(() => FederatedRoundStatus)
  status!: FederatedRoundStatus;

  @Field(() => [ID], { description: 'Participants asked this round.' })
  participantIds!: string[];

  @Field(() => ID, { description: 'The global version the round trains from.' })
  baseVersionId!: string;

  @Field(() => ID, {
    nullable: true,
    description: 'The aggregated global version, once COMPLETED.',
  })
  versionId?: string | null;

  @Field(() => GraphQLISODateTime)
  deadline!: Date;

  @Field(() => Int, { description: 'Updates received.' })
  updates!: number;

  @Field(() => GraphQLJSON, {
    nullable: true,
    description:
      'Validation metrics of the new global version per silo: { ' +
      'participant: { task: { metric: value } } }.',
  })
  metrics?: unknown;

  @Field(() => GraphQLJSON, {
    nullable: true,
    description: 'Sample counts, update norms and noise as aggregated.',
  })
  aggregation?: unknown;

  @Field(() => GraphQLJSON, { nullable: true })
  error?: unknown;

  @Field(() => GraphQLISODateTime)
  openedAt!: Date;

  @Field(() => GraphQLISODateTime, { nullable: true })
  closedAt?: Date | null;
}

@ObjectType()
export class FederatedRun {
  @Field(() => ID)
  id!: string;

  @Field(() => ID)
  modelId!: string;

  @Field()
  name!: string;

  @Field(() => FederatedRunStatus)
  status!: FederatedRunStatus;

  @Field(() => GraphQLJSON, { description: 'The validated configuration.' })
  config!: unknown;

  @Field(() => Int, { description: 'The round being run or last finished.' })
  round!: number;

  @Field(() => ID, { nullable: true })
  globalVersionId?: string | null;

  @Field(() => [FederatedParticipant])
  participants!: FederatedParticipant[];

  @Field(() => [FederatedRound], { description: 'Oldest first.' })
  rounds!: FederatedRound[];

  @Field(() => GraphQLJSON, { nullable: true })
  error?: unknown;

  @Field(() => GraphQLISODateTime)
  createdAt!: Date;

  @Field(() => GraphQLISODateTime, { nullable: true })
  finishedAt?: Date | null;
}

@ObjectType()
export class FederatedRunPage extends Paginated(FederatedRun) {}

@ObjectType({ description: 'Shown once: store the token now.' })
export class ParticipantCredential {
  @Field(() => ID)
  participantId!: string;

  @Field()
  name!: string;

  @Field({
    description:
      'Send as "Authorization: Bearer <token>" to the run\'s /v1/federated-runs endpoints.',
  })
  token!: string;
}

@ObjectType()
export class FederatedRunStart {
  @Field(() => FederatedRun)
  run!: FederatedRun;

  @Field(() => [ParticipantCredential])
  credentials!: ParticipantCredential[];
}
