import {
  Field,
  Float,
  GraphQLISODateTime,
  ID,
  InputType,
  Int,
  ObjectType,
  registerEnumType,
} from '@nestjs/graphql';

import { TaskKind } from '#libs/db';

import { GraphQLJSON } from '../common/json.scalar';
import { Paginated } from '../common/pagination';

registerEnumType(TaskKind, { name: 'TaskKind' });

@ObjectType()
export class Task {
  @Field(() => ID)
  id!: string;

  @Field(() => ID)
  datasetId!: string;

  @Field()
  name!: string;

  @Field(() => TaskKind)
  kind!: TaskKind;

  @Field(() => [String])
  targets!: string[];

  @Field(() => Float)
  lossWeight!: number;

  @Field(() => GraphQLISODateTime)
  createdAt!: Date;
}

@ObjectType()
export class ModelVersion {
  @Field(() => ID)
  id!: string;

  @Field(() => ID)
  modelId!: string;

  @Field(() => Int)
  number!: number;

  @Field(() => ID, { nullable: true })
  jobId?: string | null;

  @Field({ description: 'sha256 of the artifact zip, hex.' })
  sha256!: string;

  @Field(() => Float)
  sizeBytes!: number;

  @Field(() => GraphQLJSON, {
    description: 'Validation metrics per task: { task: { metric: value } }.',
  })
  metrics!: unknown;

  @Field(() => GraphQLJSON)
  lineage!: unknown;

  @Field()
  backend!: string;

  @Field(() => GraphQLISODateTime)
  createdAt!: Date;
}

@ObjectType()
export class ModelAlias {
  @Field()
  name!: string;

  @Field(() => ID)
  versionId!: string;

  @Field(() => GraphQLISODateTime)
  updatedAt!: Date;
}

@ObjectType({ description: 'One metric of one task in two versions.' })
export class MetricComparison {
  @Field()
  task!: string;

  @Field()
  metric!: string;

  @Field(() => Float, { nullable: true })
  a?: number | null;

  @Field(() => Float, { nullable: true })
  b?: number | null;

  @Field(() => Float, { nullable: true, description: 'b minus a.' })
  delta?: number | null;
}

@ObjectType()
export class Model {
  @Field(() => ID)
  id!: string;

  @Field()
  name!: string;

  @Field(() => GraphQLJSON, { description: 'Features and backbone.' })
  spec!: unknown;

  @Field(() => [Task])
  tasks!: Task[];

  @Field(() => [ModelVersion], { description: 'Newest first.' })
  versions!: ModelVersion[];

  @Field(() => [ModelAlias])
  aliases!: ModelAlias[];

  @Field(() => GraphQLISODateTime)
  createdAt!: Date;
}

@ObjectType()
export class ModelPage extends Paginated(Model) {}

@ObjectType()
export class JobMetric {
  @Field(() => Int)
  epoch!: number;

  @Field()
  task!: string;

  @Field({ description: 'train or validation.' })
  split!: string;

  @Field()
  name!: string;

  @Field(() => Float)
  value!: number;
}

@InputType()
export class CreateTaskInput {
  @Field(() => ID)
  datasetId!: string;

  @Field({ description: 'Unique in the project; 1 to 100 characters.' })
  name!: string;

  @Field(() => TaskKind)
  kind!: TaskKind;

  @Field(() => [String], {
    description: 'The target column; several for MULTILABEL.',
  })
  targets!: string[];

  @Field(() => Float, { nullable: true, description: 'Default 1.' })
  lossWeight?: number;
}

@InputType()
export class CreateModelInput {
  @Field()
  name!: string;

  @Field(() => [ID], { description: 'Tasks on READY datasets; one head each.' })
  taskIds!: string[];

  @Field(() => [String], {
    nullable: true,
    description:
      'Input columns, each in every dataset of the tasks. Default: every ' +
      'numeric, integer, boolean, categorical and image column of the ' +
      "first task's dataset that is not a target and that every other " +
      'dataset of the tasks has too. With several datasets, statistics ' +
      'and categorical values are pooled over them.',
  })
  features?: string[];

  @Field(() => GraphQLJSON, {
    nullable: true,
    description:
      'Backbone, for example { kind: "mlp", widths: [64, 32] } or { kind: ' +
      '"cnn", blocks: [{ filters: 16 }] }. Default an MLP of 64 and 32 ' +
      'units, or a small CNN for images.',
  })
  backbone?: unknown;
}
