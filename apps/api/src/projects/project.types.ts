import {
  Field,
  GraphQLISODateTime,
  ID,
  InputType,
  ObjectType,
  registerEnumType,
} from '@nestjs/graphql';

import { ApiKeyScope } from '#libs/db';

import { Paginated } from '../common/pagination';

registerEnumType(ApiKeyScope, {
  name: 'ApiKeyScope',
  description: 'READ reads, WRITE also changes, ADMIN also manages keys.',
});

@ObjectType()
export class Project {
  @Field(() => ID)
  id!: string;

  @Field()
  name!: string;

  @Field(() => GraphQLISODateTime)
  createdAt!: Date;
}

@ObjectType()
export class ProjectPage extends Paginated(Project) {}

@ObjectType()
export class ApiKey {
  @Field(() => ID)
  id!: string;

  @Field()
  name!: string;

  @Field({ description: 'The first characters of the key.' })
  prefix!: string;

  @Field(() => [ApiKeyScope])
  scopes!: ApiKeyScope[];

  @Field(() => GraphQLISODateTime, { nullable: true })
  expiresAt?: Date | null;

  @Field(() => GraphQLISODateTime, { nullable: true })
  revokedAt?: Date | null;

  @Field(() => GraphQLISODateTime, { nullable: true })
  lastUsedAt?: Date | null;

  @Field(() => GraphQLISODateTime)
  createdAt!: Date;
}

@ObjectType()
export class ApiKeyPage extends Paginated(ApiKey) {}

@ObjectType()
export class CreatedApiKey {
  @Field(() => ApiKey)
  apiKey!: ApiKey;

  @Field({ description: 'The key itself. It is shown only this once.' })
  key!: string;
}

@ObjectType()
export class CreatedProject {
  @Field(() => Project)
  project!: Project;

  @Field(() => CreatedApiKey, { description: "The project's first ADMIN key." })
  adminKey!: CreatedApiKey;
}

@ObjectType()
export class Me {
  @Field(() => Project)
  project!: Project;

  @Field(() => ApiKey)
  apiKey!: ApiKey;

  @Field({ description: 'True for ADMIN keys of the system project.' })
  platformAdmin!: boolean;
}

@InputType()
export class CreateProjectInput {
  @Field({ description: '1 to 100 characters.' })
  name!: string;
}

@InputType()
export class CreateApiKeyInput {
  @Field({ description: '1 to 100 characters.' })
  name!: string;

  @Field(() => [ApiKeyScope], { description: 'At least one scope.' })
  scopes!: ApiKeyScope[];

  @Field(() => GraphQLISODateTime, {
    nullable: true,
    description: 'When the key stops working; must be in the future.',
  })
  expiresAt?: Date;

  @Field(() => ID, {
    nullable: true,
    description:
      'Project to create the key in; only platform admins may name another project.',
  })
  projectId?: string;
}
