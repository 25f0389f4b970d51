import {
  ArgsType,
  Field,
  Float,
  GraphQLISODateTime,
  ID,
  InputType,
  Int,
  ObjectType,
  registerEnumType,
} from '@nestjs/graphql';

import { DatasetStatus } from '#libs/db';

import { GraphQLJSON } from '../common/json.scalar';
import { PageArgs, Paginated } from '../common/pagination';

registerEnumType(DatasetStatus, {
  name: 'DatasetStatus',
  description:
    'UPLOADED, then VALIDATING while ingestion runs, then READY or FAILED.',
});

@ObjectType()
export class Dataset {
  @Field(() => ID)
  id!: string;

  @Field()
  name!: string;

  @Field(() => DatasetStatus)
  status!: DatasetStatus;

  @Field(() => String, { nullable: true })
  contentType?: string | null;

  @Field(() => Float, { description: 'Size of the original file in bytes.' })
  sizeBytes!: number;

  @Field({ description: 'sha256 of the original file, hex.' })
  sha256!: string;

  @Field(() => String, {
    nullable: true,
    description: 'csv, tsv, jsonl, parquet or images, once validated.',
  })
  format?: string | null;

  @Field(() => Int, { nullable: true })
  rowCount?: number | null;

  @Field(() => GraphQLJSON, {
    nullable: true,
    description:
      'Columns with their type, statistics (count, missing, min, max, ' +
      'mean, std, top values) and categorical vocabulary.',
  })
  schema?: unknown;

  @Field(() => GraphQLJSON, {
    nullable: true,
    description:
      'Problems found by ingestion: { ok, problems: [{ code, severity, ' +
      'message, row, column, count, examples }] }.',
  })
  report?: unknown;

  @Field(() => GraphQLJSON, {
    nullable: true,
    description: 'The first rows as read.',
  })
  sample?: unknown;

  @Field(() => GraphQLJSON, {
    description: 'Split ratios, seed and stratification column.',
  })
  split!: unknown;

  @Field(() => Int, { nullable: true })
  shardCount?: number | null;

  @Field(() => GraphQLISODateTime)
  createdAt!: Date;

  @Field(() => GraphQLISODateTime)
  updatedAt!: Date;
}

@ObjectType()
export class DatasetPage extends Paginated(Dataset) {}

@ArgsType()
export class DatasetListArgs extends PageArgs {
  @Field(() => DatasetStatus, { nullable: true })
  status?: DatasetStatus;

  @Field({
    nullable: true,
    description: 'Datasets whose name contains this text (any case).',
  })
  name?: string;
}

@InputType()
export class SplitInput {
  @Field(() => Float, { description: 'Share of rows for training.' })
  train!: number;

  @Field(() => Float)
  validation!: number;

  @Field(() => Float)
  test!: number;

  @Field(() => Int, { nullable: true, description: 'Default 0.' })
  seed?: number;

  @Field({
    nullable: true,
    description: 'Keep class balance of this column in every split.',
  })
  stratifyBy?: string;
}

@InputType()
export class CreateDatasetUploadInput {
  @Field()
  name!: string;

  @Field(() => Float, { description: 'Exact size of the file in bytes.' })
  sizeBytes!: number;

  @Field({ nullable: true, description: 'Hex sha256; checked on completion.' })
  sha256?: string;

  @Field({ nullable: true })
  contentType?: string;

  @Field(() => SplitInput, { nullable: true })
  split?: SplitInput;
}

@ObjectType()
export class UploadPart {
  @Field(() => Int)
  partNumber!: number;

  @Field()
  url!: string;
}

@ObjectType({
  description:
    'Where to PUT the file: one URL, or one URL per part of partSizeBytes ' +
    "(then pass each part's ETag to completeDatasetUpload).",
})
export class DatasetUpload {
  @Field(() => ID)
  uploadId!: string;

  @Field(() => String, { nullable: true })
  url?: string | null;

  @Field(() => [UploadPart])
  parts!: UploadPart[];

  @Field(() => Float)
  partSizeBytes!: number;

  @Field(() => GraphQLISODateTime)
  expiresAt!: Date;
}

@InputType()
export class CompletedPartInput {
  @Field(() => Int)
  partNumber!: number;

  @Field()
  etag!: string;
}

@InputType()
export class CompleteDatasetUploadInput {
  @Field(() => ID)
  uploadId!: string;

  @Field(() => [CompletedPartInput], {
    nullable: true,
    description: 'Required for multipart uploads.',
  })
  parts?: CompletedPartInput[];
}

/** The public shape of a dataset row; sizes as numbers, no storage keys. */
export function datasetJson(row: {
  id: string;
  name: string;
  status: DatasetStatus;
  contentType: string | null;
  sizeBytes: bigint;
  sha256: string;
  format: string | null;
  rowCount: number | null;
  schema: unknown;
  report: unknown;
  sample: unknown;
  split: unknown;
  shardCount: number | null;
  createdAt: Date;
  updatedAt: Date;
}) {
  return {
    id: row.id,
    name: row.name,
    status: row.status,
    contentType: row.contentType,
    sizeBytes: Number(row.sizeBytes),
    sha256: row.sha256,
    format: row.format,
    rowCount: row.rowCount,
    schema: row.schema,
    report: row.report,
    sample: row.sample,
    split: row.split,
    shardCount: row.shardCount,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}
