import { ConfigurationError, type Problem } from '../../src/errors';
import { parseRegistry } from '../../src/registry';

/** A small valid registry, as an object the tests mutate. */
export function baseRegistry(): Record<string, any> {
  return {
    servers: [
      {
        name: 'eu-1',
        host: '10.0.0.1',
        region: 'eu',
        tenants: [
          {
            id: 'acme',
            path: '/srv/acme',
            images: [{ variable: 'APP_IMAGE', repository: 'ghcr.io/acme/app' }],
            health: { port: 8080 },
          },
        ],
      },
    ],
  };
}

/** A second tenant for the first server. */
export function tenant(id: string, port: number, extra: Record<string, unknown> = {}) {
  return {
    id,
    path: `/srv/${id}`,
    images: [{ variable: 'APP_IMAGE', repository: 'ghcr.io/acme/app' }],
    health: { port },
    ...extra,
  };
}

export function problemsOf(text: string, source = 'reg.json'): Problem[] {
  try {
    parseRegistry(text, source);
  } catch (e) {
    if (e instanceof ConfigurationError) return [...e.problems];
    throw e;
  }
  return [];
}
