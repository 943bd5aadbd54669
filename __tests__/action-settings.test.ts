/**
 * The actions read their inputs through the settings table (src/settings.ts): the table's defaults apply
 * when an input is empty (the double of @actions/core gives '' for an input not set, as the runner does
 * for one without a default), one reading of the SSH key, and errors name the input before anything
 * connects.
 */
import { jest } from '@jest/globals';
import * as core from '../__fixtures__/core';

jest.unstable_mockModule('@actions/core', () => core);
const { runAction } = await import('../src/actions/main');

/** What the step failed with: its annotations (a configuration error is one, naming the input). */
const failure = () => core.error.mock.calls.map((c) => String(c[0])).join('\n');
const SINGLE = {
  host: '127.0.0.1',
  path: '/srv/app',
  'image-repository': 'ghcr.io/acme/app',
  'health-port': '8080',
};

/** A pinned key (servers/example.json's), so the deploy gets past the trust check to the key. */
const HOST_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAII2PvW8Z2GDZAsIsAZJK7OonppyqPBH4BGtvZRet8TFz';

describe('actions through the settings table (with a double of @actions/core)', () => {
  beforeEach(() => core.reset());

  test('plan: one server given by inputs, the table defaults for the rest', async () => {
    core.reset(SINGLE);
    await runAction('plan');
    expect(core.setFailed).not.toHaveBeenCalled();
    expect(JSON.parse(core.outputs.targets!)).toEqual(['server/app']);
    expect(core.outputs['wave-count']).toBe('1'); // waves: the table's "all"
    expect(JSON.parse(core.outputs.environments!)).toEqual(['production']); // environment: the table's
  });

  test('plan: a bad single-server input is named', async () => {
    core.reset({ ...SINGLE, 'ssh-port': '99999' });
    await runAction('plan');
    expect(failure()).toContain('input "ssh-port"');
  });

  test.each([
    [
      'status',
      { registry: 'servers/example.json' },
      'input "ssh-key": is required: status reads every server over SSH',
    ],
    [
      'health',
      SINGLE,
      'input "ssh-key": is required: health checks probed through SSH (health.port) need it',
    ],
    [
      'deploy',
      { ...SINGLE, version: 'v2', 'host-key': HOST_KEY },
      'input "ssh-key": is required: the SSH private key, from a secret',
    ],
    [
      'status',
      { registry: 'servers/example.json', concurrency: '0' },
      'input "concurrency": "0" is not a whole number of at least 1',
    ],
    [
      'deploy',
      { ...SINGLE, version: 'v2', 'pre-pull-wave': '0' },
      'input "pre-pull-wave": "0" is not a whole number of at least 1',
    ],
    ['gate', { 'max-failures': '-1' }, 'input "max-failures": "-1" is not a whole number'],
    [
      'status',
      { registry: 'servers/example.json', 'ssh-key': HOST_KEY },
      'input "ssh-key": this is a public key; pass the private one',
    ],
    [
      'deploy',
      { ...SINGLE, version: 'v2', 'host-key': HOST_KEY, 'ssh-key': 'not a key at all' },
      'input "ssh-key": not an SSH private key',
    ],
  ])('%s: %j fails before anything connects', async (action, inputs, says) => {
    core.reset(inputs);
    await runAction(action);
    expect(core.setFailed).toHaveBeenCalled();
    expect(failure()).toContain(says);
  });
});
