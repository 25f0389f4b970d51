import type { ApiKeyScope } from '#libs/db';

/** Who is calling: the API key and the project it belongs to. */
export interface Principal {
  keyId: string;
  projectId: string;
  scopes: ApiKeyScope[];
  /** True for ADMIN keys of the system project: they manage all projects. */
  platformAdmin: boolean;
}
