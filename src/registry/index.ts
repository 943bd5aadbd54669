export { parseRegistry } from './parse';
export { registryJsonSchema, registrySchema, DEFAULT_RINGS } from './schema';
export { targetsOf } from './model';
export type { Registry, Server, Tenant, Target, HealthCheck, Image } from './model';
