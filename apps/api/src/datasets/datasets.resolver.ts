import { Args, ID, Mutation, Query, Resolver } from '@nestjs/graphql';

import { CurrentPrincipal, RequireScope } from '../auth/decorators';
import { Principal } from '../auth/principal';
import { pageComplexity } from '../common/pagination';
import {
  CompleteDatasetUploadInput,
  CreateDatasetUploadInput,
  Dataset,
  DatasetListArgs,
  DatasetPage,
  DatasetUpload,
  datasetJson,
} from './dataset.types';
import { DatasetsService } from './datasets.service';

@Resolver(() => Dataset)
export class DatasetsResolver {
  constructor(private readonly service: DatasetsService) {}

  @Query(() => Dataset, {
    description: 'A dataset with its schema, statistics, sample and report.',
  })
  async dataset(
    @CurrentPrincipal() principal: Principal,
    @Args('id', { type: () => ID }) id: string,
  ) {
    return datasetJson(await this.service.find(principal, id));
  }

  @Query(() => DatasetPage, { complexity: pageComplexity })
  datasets(
    @CurrentPrincipal() principal: Principal,
    @Args() args: DatasetListArgs,
  ) {
    return this.service.list(principal, args);
  }

  @Mutation(() => DatasetUpload, {
    description:
      'Starts an upload straight to object storage with presigned URLs; ' +
      'finish it with completeDatasetUpload.',
  })
  @RequireScope('WRITE')
  createDatasetUpload(
    @CurrentPrincipal() principal: Principal,
    @Args('input') input: CreateDatasetUploadInput,
  ) {
    return this.service.createUpload(principal, input);
  }

  @Mutation(() => Dataset, {
    description:
      'Checks the uploaded file (size, sha256), records the dataset and queues its ingestion.',
  })
  @RequireScope('WRITE')
  completeDatasetUpload(
    @CurrentPrincipal() principal: Principal,
    @Args('input') input: CompleteDatasetUploadInput,
  ) {
    return this.service.completeUpload(principal, input);
  }

  @Mutation(() => Dataset, {
    description:
      'Deletes the dataset and every object it owns; CONFLICT while a job uses it.',
  })
  @RequireScope('WRITE')
  deleteDataset(
    @CurrentPrincipal() principal: Principal,
    @Args('id', { type: () => ID }) id: string,
  ) {
    return this.service.delete(principal, id);
  }
}
