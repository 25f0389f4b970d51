import { Args, ID, Query, Resolver } from '@nestjs/graphql';

import { CurrentPrincipal } from '../auth/decorators';
import { Principal } from '../auth/principal';
import { PageArgs, pageComplexity } from '../common/pagination';
import { Dataset, DatasetPage, datasetJson } from './dataset.types';
import { DatasetsService } from './datasets.service';

@Resolver(() => Dataset)
export class DatasetsResolver {
  constructor(private readonly service: DatasetsService) {}

  @Query(() => Dataset)
  async dataset(
    @CurrentPrincipal() principal: Principal,
    @Args('id', { type: () => ID }) id: string,
  ) {
    return datasetJson(await this.service.find(principal, id));
  }

  @Query(() => DatasetPage, { complexity: pageComplexity })
  datasets(@CurrentPrincipal() principal: Principal, @Args() page: PageArgs) {
    return this.service.list(principal, page);
  }
}
