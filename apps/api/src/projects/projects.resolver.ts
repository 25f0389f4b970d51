import {
  Args,
  ID,
  Mutation,
  Parent,
  Query,
  ResolveField,
  Resolver,
} from '@nestjs/graphql';

import { CurrentPrincipal, RequireScope } from '../auth/decorators';
import { Principal } from '../auth/principal';
import { PageArgs, pageComplexity } from '../common/pagination';
import {
  ApiKey,
  ApiKeyPage,
  CreateApiKeyInput,
  CreatedApiKey,
  CreatedProject,
  CreateProjectInput,
  Me,
  Project,
  ProjectPage,
} from './project.types';
import { ProjectsService } from './projects.service';

@Resolver(() => Project)
export class ProjectsResolver {
  constructor(private readonly service: ProjectsService) {}

  @Query(() => Me, { description: 'The calling key and its project.' })
  me(@CurrentPrincipal() principal: Principal) {
    return this.service.me(principal);
  }

  @Query(() => Project)
  project(
    @CurrentPrincipal() principal: Principal,
    @Args('id', { type: () => ID }) id: string,
  ) {
    return this.service.findProject(principal, id);
  }

  @Query(() => ProjectPage, {
    complexity: pageComplexity,
    description: "The caller's project; every project for platform admins.",
  })
  projects(@CurrentPrincipal() principal: Principal, @Args() page: PageArgs) {
    return this.service.listProjects(principal, page);
  }

  @Query(() => ApiKeyPage, { complexity: pageComplexity })
  @RequireScope('ADMIN')
  apiKeys(@CurrentPrincipal() principal: Principal, @Args() page: PageArgs) {
    return this.service.listApiKeys(principal, page);
  }

  @ResolveField('apiKeys', () => ApiKeyPage, {
    complexity: pageComplexity,
    description: "The project's keys; needs an ADMIN key of this project.",
  })
  projectApiKeys(
    @Parent() project: Project,
    @CurrentPrincipal() principal: Principal,
    @Args() page: PageArgs,
  ) {
    return this.service.listApiKeys(principal, page, project.id);
  }

  @Mutation(() => CreatedProject, {
    description: 'Platform admins only. Returns the first ADMIN key once.',
  })
  @RequireScope('ADMIN')
  createProject(
    @CurrentPrincipal() principal: Principal,
    @Args('input') input: CreateProjectInput,
  ) {
    return this.service.createProject(principal, input);
  }

  @Mutation(() => CreatedApiKey)
  @RequireScope('ADMIN')
  createApiKey(
    @CurrentPrincipal() principal: Principal,
    @Args('input') input: CreateApiKeyInput,
  ) {
    return this.service.createApiKey(principal, input);
  }

  @Mutation(() => ApiKey, {
    description: 'Revoked keys stop working at once.',
  })
  @RequireScope('ADMIN')
  revokeApiKey(
    @CurrentPrincipal() principal: Principal,
    @Args('id', { type: () => ID }) id: string,
  ) {
    return this.service.revokeApiKey(principal, id);
  }
}
