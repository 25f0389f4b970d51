import { Field, Float, ID, InputType, Int, ObjectType } from '@nestjs/graphql';

import { GraphQLJSON } from '../common/json.scalar';

@InputType()
export class FineTuneInput {
  @Field(() => [ID], {
    nullable: true,
    description:
      'Tasks to train. Tasks the base has reuse its heads; new tasks get ' +
      "new heads. Default: the base model's tasks.",
  })
  taskIds?: string[];

  @Field(() => [String], {
    nullable: true,
    description:
      "Input columns. Default the base model's. Different columns give the " +
      "model a new input layer feeding the base's body (then name a new " +
      'model).',
  })
  features?: string[];

  @Field({
    nullable: true,
    description:
      'Put the result in a new model of this name. Default: a new version ' +
      "of the base's model, with the new tasks added to it.",
  })
  modelName?: string;

  @Field(() => GraphQLJSON, {
    nullable: true,
    description:
      'Which backbone weights stay fixed: { kind: "none" } (default), { ' +
      'kind: "backbone" }, { kind: "layers", count: N } (the first N ' +
      'layers) or { kind: "two-stage", frozenEpochs: K, ' +
      'unfrozenLearningRate } (frozen for K epochs, then trained at the ' +
      'lower rate).',
  })
  freeze?: unknown;

  @Field(() => [String], {
    nullable: true,
    description:
      'Reused heads (task names) that stay exactly as in the base, so with ' +
      'a frozen backbone their predictions do not change.',
  })
  freezeHeads?: string[];

  @Field(() => Float, { nullable: true, description: 'Default: learningRate.' })
  backboneLearningRate?: number;

  @Field(() => Float, { nullable: true, description: 'Default: learningRate.' })
  headLearningRate?: number;

  @Field(() => GraphQLJSON, {
    nullable: true,
    description:
      'Training options as for startTraining: epochs, batchSize, ' +
      'optimizer, learningRate, seed, ...',
  })
  config?: unknown;
}

@InputType()
export class MergeSourceInput {
  @Field(() => ID)
  versionId!: string;

  @Field(() => Float, {
    nullable: true,
    description:
      'Explicit weight of this source; default its training sample count (fedavg) or 1 (uniform).',
  })
  weight?: number;
}

@ObjectType({ description: 'A version in a lineage walk.' })
export class LineageNode {
  @Field(() => ID)
  id!: string;

  @Field(() => ID)
  modelId!: string;

  @Field(() => Int)
  number!: number;

  @Field({ description: 'sha256 of the artifact: the content hash.' })
  sha256!: string;

  @Field({
    description:
      'How the version was made: trained, fine-tuned, merged, federated or imported.',
  })
  kind!: string;

  @Field(() => Int, {
    description: 'Steps from the version asked about (1 = direct).',
  })
  distance!: number;

  @Field(() => [LineageEdge], {
    description: 'The versions this one was made from.',
  })
  parents!: LineageEdge[];
}

@ObjectType()
export class LineageEdge {
  @Field(() => ID)
  versionId!: string;

  @Field({
    description:
      'base (fine-tune), source (merge) or previous (federated round).',
  })
  relation!: string;
}

@ObjectType()
export class Lineage {
  @Field(() => LineageNode)
  version!: LineageNode;

  @Field(() => [LineageNode], {
    description: 'Everything it was made from, nearest first.',
  })
  ancestors!: LineageNode[];

  @Field(() => [LineageNode], {
    description: 'Everything made from it, nearest first.',
  })
  descendants!: LineageNode[];
}
