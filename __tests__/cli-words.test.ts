/** The words a person reads when something is missing: the registry file. */
import { runCli } from '../src/cli/main';
import { cli } from './helpers/cli';

test('no registry given and none at the default path: says where it looked and how to make one', async () => {
  let stderr = '';
  const code = await runCli(['plan'], {
    stdout: () => undefined,
    stderr: (t) => (stderr += t),
    readText: async () => {
      throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
    },
    env: {},
    self: 'npx fleet-deploy',
  });
  expect(code).toBe(2);
  expect(stderr).toBe(
    'error: the default registry (pass --registry FILE, or set $FLEET_REGISTRY, or create one with: npx fleet-deploy init): cannot read "servers/production.json": no such file\n',
  );
});

test('a registry named by $FLEET_REGISTRY that is missing is reported as $FLEET_REGISTRY, not --registry', async () => {
  const r = await cli(['validate'], {}, { FLEET_REGISTRY: 'missing.json' });
  expect(r.stderr).toBe('error: $FLEET_REGISTRY: cannot read "missing.json": no such file\n');
});
