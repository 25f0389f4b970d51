import {
  Field,
  Float,
  GraphQLISODateTime,
  ID,
  ObjectType,
  registerEnumType,
} from '@nestjs/graphql';

import { DatasetStatus } from '#libs/db';

import { Paginated } from '../common/pagination';

registerEnumType(DatasetStatus, { name: 'DatasetStatus' });

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

  @Field(() => GraphQLISODateTime)
  createdAt!: Date;
}

@ObjectType()
export class DatasetPage extends Paginated(Dataset) {}

/** The JSON shape REST answers with; sizes as numbers. */
export function datasetJson(row: {
  id: string;
  name: string;
  status: DatasetStatus;
  contentType: string | null;
  sizeBytes: bigint;
  sha256: string;
  createdAt: Date;
}) {
  return {
    id: row.id,
    name: row.name,
    status: row.status,
    contentType: row.contentType,
    sizeBytes: Number(row.sizeBytes),
    sha256: row.sha256,
    createdAt: row.createdAt,
  };
}
