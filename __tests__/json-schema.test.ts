/**
 * The committed JSON Schema (servers/registry.schema.json) is what editors check the registry with; it
 * must accept what the tool accepts and reject the mistakes an editor can see. Checked with Ajv, an
 * independent JSON Schema implementation.
 */
import { readFileSync } from 'node:fs';
import Ajv2020 from 'ajv/dist/2020';
import { baseRegistry } from './helpers/registry';

const schema = JSON.parse(readFileSync('servers/registry.schema.json', 'utf8'));
const ajv = new Ajv2020({ allErrors: true, strict: false });
const validate = ajv.compile(schema);

test('the example registry references the schema and passes it', () => {
  const production = JSON.parse(readFileSync('servers/example.json', 'utf8'));
  expect(production.$schema).toBe('./registry.schema.json');
  expect(validate(production)).toBe(true);
});

test.each([
  ['an unknown key', (r: any) => (r.servers[0].hostkey = 'x'), '/servers/0'],
  ['a bad server name', (r: any) => (r.servers[0].name = 'Eu 1'), '/servers/0/name'],
  [
    'a path with shell characters',
    (r: any) => (r.servers[0].tenants[0].path = '/srv/$(x)'),
    '/servers/0/tenants/0/path',
  ],
  ['a port out of range', (r: any) => (r.servers[0].port = 0), '/servers/0/port'],
  [
    'an unknown compose command',
    (r: any) => (r.servers[0].tenants[0].compose = { command: 'kubectl' }),
    '/servers/0/tenants/0/compose/command',
  ],
])('the schema rejects %s', (_, mutate, where) => {
  const r = baseRegistry();
  expect(validate(r)).toBe(true);
  mutate(r);
  expect(validate(r)).toBe(false);
  expect(validate.errors!.map((e) => e.instancePath)).toContain(where);
});
