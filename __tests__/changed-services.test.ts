/**
 * The in-place switch restarts only the services whose image changed, when the registry says which
 * service runs which image; otherwise every service, as before. Pure: registry in, service list out.
 */
import { parseRegistry, targetsOf, type Tenant } from '../src/registry';
import { changedServices } from '../src/deploy/strategies/compose';
import type { Release } from '../src/deploy/result';
import { baseRegistry } from './helpers/registry';

function tenant(images: object[], compose?: object): Tenant {
  const r = baseRegistry();
  Object.assign(r.servers[0].tenants[0], { images, ...(compose ? { compose } : {}) });
  return targetsOf(parseRegistry(JSON.stringify(r), 'r.json'))[0]!.tenant;
}

const release = (refs: Record<string, string>): Release => ({ refs, imageIds: [], digests: [] });
const mapped = [
  { variable: 'APP_IMAGE', repository: 'r/app', service: ['web', 'worker'] },
  { variable: 'PROXY_IMAGE', repository: 'r/proxy', service: 'edge' },
];
const v1 = release({ APP_IMAGE: 'r/app:v1', PROXY_IMAGE: 'r/proxy:1' });

test('the registry keeps each image its services, one or a list', () => {
  expect(tenant(mapped).images).toEqual([
    { variable: 'APP_IMAGE', repository: 'r/app', services: ['web', 'worker'] },
    { variable: 'PROXY_IMAGE', repository: 'r/proxy', services: ['edge'] },
  ]);
});

test('only the services of the images whose reference changed', () => {
  const next = release({ APP_IMAGE: 'r/app:v2', PROXY_IMAGE: 'r/proxy:1' });
  expect(changedServices(tenant(mapped), v1, next)).toEqual(['web', 'worker']);
  const both = release({ APP_IMAGE: 'r/app:v2', PROXY_IMAGE: 'r/proxy:2' });
  expect(changedServices(tenant(mapped), v1, both)).toEqual(['web', 'worker', 'edge']);
});

test('compose.services still bounds the list; nothing left of it means the usual services', () => {
  const next = release({ APP_IMAGE: 'r/app:v2', PROXY_IMAGE: 'r/proxy:1' });
  expect(changedServices(tenant(mapped, { services: ['web', 'edge'] }), v1, next)).toEqual(['web']);
  expect(changedServices(tenant(mapped, { services: ['edge'] }), v1, next)).toBeUndefined();
});

test('every service (undefined) when which one changed is not certain', () => {
  const next = release({ APP_IMAGE: 'r/app:v2', PROXY_IMAGE: 'r/proxy:1' });
  const unmapped = [mapped[0]!, { variable: 'PROXY_IMAGE', repository: 'r/proxy' }];
  expect(changedServices(tenant(unmapped), v1, next)).toBeUndefined(); // an image names no service
  expect(changedServices(tenant(mapped), release({ APP_IMAGE: 'r/app:v1' }), next)).toBeUndefined(); // first deploy of PROXY_IMAGE
  expect(changedServices(tenant(mapped), v1, v1)).toBeUndefined(); // same references: a re-pushed tag
});
