/**
 * Invalid registries: each must be rejected with the right JSON path and the right line. The expected
 * line is found by plain text search for a marker in the file (independent of the parser's own locator).
 */
import { ED25519, RSA_AS_ED25519 } from './helpers/keys';
import { baseRegistry, problemsOf, tenant } from './helpers/registry';

type Reg = Record<string, any>;

interface Case {
  name: string;
  /** Either a mutation of the base registry or a whole text. */
  mutate?: (r: Reg) => void;
  text?: string;
  path: Array<string | number>;
  /** The line is the first one containing this text (offset lines down with `offset`). */
  marker: string;
  offset?: number;
  /** Which occurrence of the marker (1-based; default 1). */
  nth?: number;
  /** Words the message or hint must contain (the value, the fix). */
  says: string[];
}

const S0 = ['servers', 0];
const T0 = ['servers', 0, 'tenants', 0];

const cases: Case[] = [
  // JSON syntax
  {
    name: 'trailing comma',
    text: '{\n  "servers": [],\n}\n',
    path: [],
    marker: '}',
    says: ['invalid JSON', 'trailing'],
  },
  {
    name: 'comment',
    text: '{\n  // fleet\n  "servers": []\n}\n',
    path: [],
    marker: '//',
    says: ['comments are not allowed'],
  },
  {
    name: 'unterminated string',
    text: '{\n  "servers": [\n    {"name": "eu-1\n  ]\n}\n',
    path: [],
    marker: '"eu-1',
    says: ['invalid JSON'],
  },
  {
    // JSON.parse reads it, but everything after it recursed once per level (a stack overflow)
    name: 'nested 8,000 deep',
    text: `{\n  "servers": [],\n  "x":\n    ${'['.repeat(7999)}${']'.repeat(7999)}\n}\n`,
    path: [],
    marker: '[[[',
    says: ['nests 8000 levels deep', 'at most 64'],
  },
  { name: 'root is a list', text: '[\n  1\n]\n', path: [], marker: '[', says: ['a list', 'object'] },
  // top level
  {
    name: 'servers missing',
    text: '{\n  "rings": ["a"]\n}\n',
    path: ['servers'],
    marker: '{',
    says: ['required'],
  },
  {
    name: 'unknown top-level key',
    mutate: (r) => (r.server = []),
    path: ['server'],
    marker: '"server":',
    says: ['unknown key "server"', 'did you mean "servers"'],
  },
  {
    name: 'version 2',
    mutate: (r) => (r.version = 2),
    path: ['version'],
    marker: '"version"',
    says: ['2', 'must be 1'],
  },
  {
    name: 'rings empty',
    mutate: (r) => (r.rings = []),
    path: ['rings'],
    marker: '"rings"',
    says: ['at least one ring'],
  },
  {
    name: 'ring listed twice',
    mutate: (r) => (r.rings = ['canary', 'general', 'canary']),
    path: ['rings', 2],
    marker: '"canary"',
    offset: 2,
    says: ['"canary"', 'twice'],
  },
  {
    name: 'ring name with capitals',
    mutate: (r) => (r.rings = ['Canary']),
    path: ['rings', 0],
    marker: '"Canary"',
    says: ['"Canary"', 'lowercase'],
  },
  // servers
  {
    name: 'server name with a space',
    mutate: (r) => (r.servers[0].name = 'Eu 1'),
    path: [...S0, 'name'],
    marker: '"Eu 1"',
    says: ['"Eu 1"', 'server name', 'e.g.'],
  },
  {
    name: 'server name too long',
    mutate: (r) => (r.servers[0].name = 'a'.repeat(64)),
    path: [...S0, 'name'],
    marker: 'aaaa',
    says: ['1-63'],
  },
  {
    name: 'duplicate server name',
    mutate: (r) => r.servers.push({ name: 'eu-1', host: '10.0.0.2', region: 'eu', tenants: [] }),
    path: ['servers', 1, 'name'],
    marker: '"eu-1"',
    nth: 2,
    says: ['"eu-1"', 'already used by servers[0]'],
  },
  {
    name: 'host with shell characters',
    mutate: (r) => (r.servers[0].host = 'eu-1;reboot'),
    path: [...S0, 'host'],
    marker: 'reboot',
    says: ['"eu-1;reboot"', 'DNS name'],
  },
  {
    name: 'host missing',
    mutate: (r) => delete r.servers[0].host,
    path: [...S0, 'host'],
    marker: '"name": "eu-1"',
    offset: -1,
    says: ['required'],
  },
  {
    name: 'port 0',
    mutate: (r) => (r.servers[0].port = 0),
    path: [...S0, 'port'],
    marker: '"port": 0',
    says: ['0', '1 to 65535'],
  },
  {
    name: 'port 70000',
    mutate: (r) => (r.servers[0].port = 70000),
    path: [...S0, 'port'],
    marker: '70000',
    says: ['70000', '65535'],
  },
  {
    name: 'port as a string',
    mutate: (r) => (r.servers[0].port = '22'),
    path: [...S0, 'port'],
    marker: '"22"',
    says: ['"22"', 'a string', 'whole number'],
  },
  {
    name: 'port with a fraction',
    mutate: (r) => (r.servers[0].port = 22.5),
    path: [...S0, 'port'],
    marker: '22.5',
    says: ['22.5'],
  },
  {
    name: 'user with capitals',
    mutate: (r) => (r.servers[0].user = 'Root'),
    path: [...S0, 'user'],
    marker: '"Root"',
    says: ['"Root"', 'POSIX user name'],
  },
  {
    name: 'region missing everywhere',
    mutate: (r) => delete r.servers[0].region,
    path: S0,
    marker: '"name": "eu-1"',
    offset: -1,
    says: ['no region', 'defaults.server'],
  },
  {
    name: 'region in capitals',
    mutate: (r) => (r.servers[0].region = 'EU'),
    path: [...S0, 'region'],
    marker: '"EU"',
    says: ['"EU"', 'region'],
  },
  {
    name: 'host key not a key',
    mutate: (r) => (r.servers[0].hostKey = 'not-a-key'),
    path: [...S0, 'hostKey'],
    marker: 'not-a-key',
    says: ['"not-a-key"', 'ssh-keyscan'],
  },
  {
    name: 'host key type does not match its base64',
    mutate: (r) => (r.servers[0].hostKey = RSA_AS_ED25519),
    path: [...S0, 'hostKey'],
    marker: 'ssh-rsa AAAA',
    says: ['declares type ssh-rsa', 'ssh-ed25519'],
  },
  {
    name: 'host key list empty',
    mutate: (r) => (r.servers[0].hostKey = []),
    path: [...S0, 'hostKey'],
    marker: '"hostKey"',
    says: ['at least one'],
  },
  {
    name: 'bad key inside a host key list',
    mutate: (r) => (r.servers[0].hostKey = [ED25519, 'SHA256:short']),
    path: [...S0, 'hostKey', 1],
    marker: 'SHA256:short',
    says: ['"SHA256:short"'],
  },
  {
    name: 'misspelt hostKey',
    mutate: (r) => (r.servers[0].hostkey = ED25519),
    path: [...S0, 'hostkey'],
    marker: '"hostkey"',
    says: ['unknown key "hostkey"', 'did you mean "hostKey"'],
  },
  {
    name: 'label key in capitals',
    mutate: (r) => (r.servers[0].labels = { Tier: 'gold' }),
    path: [...S0, 'labels', 'Tier'],
    marker: '"Tier"',
    says: ['"Tier"', 'label key'],
  },
  {
    name: 'label value with a space',
    mutate: (r) => (r.servers[0].labels = { tier: 'gold plus' }),
    path: [...S0, 'labels', 'tier'],
    marker: 'gold plus',
    says: ['"gold plus"', 'label value'],
  },
  {
    name: 'jump host without host',
    mutate: (r) => (r.servers[0].jump = { user: 'jump' }),
    path: [...S0, 'jump', 'host'],
    marker: '"jump": {',
    says: ['required'],
  },
  {
    name: 'tenants missing',
    mutate: (r) => delete r.servers[0].tenants,
    path: [...S0, 'tenants'],
    marker: '"name": "eu-1"',
    offset: -1,
    says: ['required'],
  },
  {
    name: 'same address twice',
    mutate: (r) => r.servers.push({ name: 'eu-2', host: '10.0.0.1', region: 'eu', tenants: [] }),
    path: ['servers', 1, 'host'],
    marker: '"name": "eu-2"',
    offset: 1,
    says: ['10.0.0.1:22', 'servers[0]'],
  },
  // tenants
  {
    name: 'tenant id in capitals',
    mutate: (r) => (r.servers[0].tenants[0].id = 'Acme'),
    path: [...T0, 'id'],
    marker: '"Acme"',
    says: ['"Acme"', 'tenant id'],
  },
  {
    name: 'tenant id on two servers',
    mutate: (r) =>
      r.servers.push({
        name: 'eu-2',
        host: '10.0.0.2',
        region: 'eu',
        tenants: [tenant('acme', 8080, { path: '/x/acme' })],
      }),
    path: ['servers', 1, 'tenants', 0, 'id'],
    marker: '"/x/acme"',
    offset: -1,
    says: ['"acme"', 'servers[0].tenants[0]', 'unique'],
  },
  {
    name: 'path escaping with ..',
    mutate: (r) => (r.servers[0].tenants[0].path = '/srv/../etc'),
    path: [...T0, 'path'],
    marker: '/srv/../etc',
    says: ['".."'],
  },
  {
    name: 'path with ~',
    mutate: (r) => (r.servers[0].tenants[0].path = '~/app'),
    path: [...T0, 'path'],
    marker: '~/app',
    says: ['"~/app"', 'relative to the SSH user'],
  },
  {
    name: 'path with command substitution',
    mutate: (r) => (r.servers[0].tenants[0].path = '/srv/$(reboot)'),
    path: [...T0, 'path'],
    marker: '$(reboot)',
    says: ['"/srv/$(reboot)"', 'shell characters'],
  },
  {
    name: 'path with a space',
    mutate: (r) => (r.servers[0].tenants[0].path = '/srv/my app'),
    path: [...T0, 'path'],
    marker: 'my app',
    says: ['"/srv/my app"'],
  },
  {
    name: 'unknown placeholder',
    mutate: (r) => (r.servers[0].tenants[0].path = '/srv/{tenat}'),
    path: [...T0, 'path'],
    marker: '{tenat}',
    says: ['{tenat}', '{tenant}'],
  },
  {
    name: 'two tenants share a path',
    mutate: (r) => r.servers[0].tenants.push(tenant('globex', 8081, { path: '/srv/acme' })),
    path: ['servers', 0, 'tenants', 1, 'path'],
    marker: '"id": "globex"',
    offset: 1,
    says: ['"/srv/acme"', 'servers[0].tenants[0]', 'own directory'],
  },
  {
    name: "a tenant inside another tenant's directory",
    mutate: (r) => r.servers[0].tenants.push(tenant('globex', 8081, { path: '/srv/acme/globex' })),
    path: ['servers', 0, 'tenants', 1, 'path'],
    marker: '"id": "globex"',
    offset: 1,
    says: [
      '"globex"',
      '"/srv/acme/globex"',
      'inside the directory of tenant "acme"',
      '"/srv/acme"',
      'of its own',
    ],
  },
  {
    name: "a tenant inside another tenant's .fleet (written first)",
    mutate: (r) => r.servers[0].tenants.unshift(tenant('globex', 8081, { path: '/srv/acme/.fleet/x' })),
    path: ['servers', 0, 'tenants', 1, 'path'],
    marker: '"/srv/acme"',
    says: ['"globex"', 'inside the .fleet directory of tenant "acme"', 'of its own'],
  },
  {
    name: 'a templated path collides',
    mutate: (r) => {
      r.defaults = { tenant: { path: '/srv/{server}' } };
      delete r.servers[0].tenants[0].path;
      r.servers[0].tenants.push(tenant('globex', 8081, { path: undefined }));
    },
    path: ['defaults', 'tenant', 'path'],
    marker: '{server}',
    says: ['"/srv/eu-1"', 'own directory'],
  },
  {
    name: 'two tenants share a health port',
    mutate: (r) => r.servers[0].tenants.push(tenant('globex', 8080)),
    path: ['servers', 0, 'tenants', 1, 'health', 'port'],
    marker: '"port": 8080',
    nth: 2,
    says: ['8080', 'servers[0].tenants[0]'],
  },
  {
    name: 'no health check',
    mutate: (r) => delete r.servers[0].tenants[0].health,
    path: T0,
    marker: '"id": "acme"',
    offset: -1,
    says: ['no health check', 'health.port'],
  },
  {
    name: 'health with port and url',
    mutate: (r) => (r.servers[0].tenants[0].health = { port: 8080, url: 'https://acme.example.com/health' }),
    path: T0,
    marker: '"id": "acme"',
    offset: -1,
    says: ['both a port', 'set one'],
  },
  {
    name: 'health url not http',
    mutate: (r) => (r.servers[0].tenants[0].health = { url: 'ftp://acme/health' }),
    path: [...T0, 'health', 'url'],
    marker: 'ftp://',
    says: ['"ftp://acme/health"', 'http'],
  },
  {
    name: 'interval without a unit',
    mutate: (r) => (r.servers[0].tenants[0].health.interval = '5 seconds'),
    path: [...T0, 'health', 'interval'],
    marker: '5 seconds',
    says: ['"5 seconds"', '"30s"'],
  },
  {
    name: 'timeout longer than deadline',
    mutate: (r) => Object.assign(r.servers[0].tenants[0].health, { timeout: '2m', deadline: '60s' }),
    path: [...T0, 'health', 'timeout'],
    marker: '"2m"',
    says: ['120000 ms', '60000 ms'],
  },
  {
    name: 'successes 0',
    mutate: (r) => (r.servers[0].tenants[0].health.successes = 0),
    path: [...T0, 'health', 'successes'],
    marker: '"successes"',
    says: ['0', 'at least 1'],
  },
  {
    name: 'expectStatus 99',
    mutate: (r) => (r.servers[0].tenants[0].health.expectStatus = 99),
    path: [...T0, 'health', 'expectStatus'],
    marker: '99',
    says: ['99', '100 to 599'],
  },
  {
    name: 'misspelt health key',
    mutate: (r) => (r.servers[0].tenants[0].health.expect_status = 200),
    path: [...T0, 'health', 'expect_status'],
    marker: 'expect_status',
    says: ['did you mean "expectStatus"'],
  },
  {
    name: 'bad JSON field path',
    mutate: (r) => (r.servers[0].tenants[0].health.json = { 'a..b': 'ok' }),
    path: [...T0, 'health', 'json', 'a..b'],
    marker: 'a..b',
    says: ['"a..b"', 'field path'],
  },
  {
    name: 'images empty',
    mutate: (r) => (r.servers[0].tenants[0].images = []),
    path: [...T0, 'images'],
    marker: '"images"',
    says: ['at least one image'],
  },
  {
    name: 'no images anywhere',
    mutate: (r) => delete r.servers[0].tenants[0].images,
    path: T0,
    marker: '"id": "acme"',
    offset: -1,
    says: ['no images', 'defaults.tenant'],
  },
  {
    name: 'no path anywhere',
    mutate: (r) => delete r.servers[0].tenants[0].path,
    path: T0,
    marker: '"id": "acme"',
    offset: -1,
    says: ['no path'],
  },
  {
    name: 'image variable with a hyphen',
    mutate: (r) => (r.servers[0].tenants[0].images[0].variable = 'APP-IMAGE'),
    path: [...T0, 'images', 0, 'variable'],
    marker: 'APP-IMAGE',
    says: ['"APP-IMAGE"', 'variable name'],
  },
  {
    name: 'image repository with a tag',
    mutate: (r) => (r.servers[0].tenants[0].images[0].repository = 'ghcr.io/acme/app:latest'),
    path: [...T0, 'images', 0, 'repository'],
    marker: 'app:latest',
    says: ['"ghcr.io/acme/app:latest"', 'without tag'],
  },
  {
    name: 'image service that is not a service name',
    mutate: (r) => (r.servers[0].tenants[0].images[0].service = 'web; reboot'),
    path: [...T0, 'images', 0, 'service'],
    marker: 'web; reboot',
    says: ['service name'],
  },
  {
    name: 'image variable listed twice',
    mutate: (r) =>
      r.servers[0].tenants[0].images.push({ variable: 'APP_IMAGE', repository: 'ghcr.io/acme/other' }),
    path: [...T0, 'images', 1, 'variable'],
    marker: 'ghcr.io/acme/other',
    offset: -1,
    says: ['"APP_IMAGE"', 'twice'],
  },
  {
    name: 'unknown compose command',
    mutate: (r) => (r.servers[0].tenants[0].compose = { command: 'kubectl apply' }),
    path: [...T0, 'compose', 'command'],
    marker: 'kubectl',
    says: ['"kubectl apply"', '"docker-compose"'],
  },
  {
    name: 'compose file outside the tenant',
    mutate: (r) => (r.servers[0].tenants[0].compose = { file: '../docker-compose.yml' }),
    path: [...T0, 'compose', 'file'],
    marker: '../docker',
    says: ['".."'],
  },
  {
    name: 'compose file absolute',
    mutate: (r) => (r.servers[0].tenants[0].compose = { file: ['a.yml', '/etc/b.yml'] }),
    path: [...T0, 'compose', 'file', 1],
    marker: '/etc/b.yml',
    says: ['"/etc/b.yml"', 'relative'],
  },
  {
    name: 'compose project in capitals',
    mutate: (r) => (r.servers[0].tenants[0].compose = { project: 'Acme' }),
    path: [...T0, 'compose', 'project'],
    marker: '"Acme"',
    says: ['"Acme"', 'project'],
  },
  {
    name: 'two tenants share a compose project',
    mutate: (r) => {
      r.servers[0].tenants[0].compose = { project: 'app' };
      r.servers[0].tenants.push(tenant('globex', 8081, { compose: { project: 'app' } }));
    },
    path: ['servers', 0, 'tenants', 1, 'compose', 'project'],
    marker: '"project": "app"',
    nth: 2,
    says: ['"app"', 'servers[0].tenants[0]'],
  },
  {
    name: 'services empty',
    mutate: (r) => (r.servers[0].tenants[0].compose = { services: [] }),
    path: [...T0, 'compose', 'services'],
    marker: '"services"',
    says: ['at least one service'],
  },
  {
    name: 'service name with a space',
    mutate: (r) => (r.servers[0].tenants[0].compose = { services: ['web app'] }),
    path: [...T0, 'compose', 'services', 0],
    marker: 'web app',
    says: ['"web app"'],
  },
  {
    name: 'ring not in rings',
    mutate: (r) => (r.servers[0].tenants[0].ring = 'beta'),
    path: [...T0, 'ring'],
    marker: '"beta"',
    says: ['"beta"', 'sandbox, canary, general'],
  },
  {
    name: 'unknown key in defaults.tenant',
    mutate: (r) => (r.defaults = { tenant: { halth: {} } }),
    path: ['defaults', 'tenant', 'halth'],
    marker: '"halth"',
    says: ['did you mean "health"'],
  },
  {
    name: 'bad port in defaults.server',
    mutate: (r) => (r.defaults = { server: { port: -1 } }),
    path: ['defaults', 'server', 'port'],
    marker: '"port": -1',
    says: ['-1'],
  },
  {
    name: 'ring from defaults not in rings',
    mutate: (r) => {
      r.rings = ['canary', 'general'];
      r.defaults = { tenant: { ring: 'sandbox' } };
    },
    path: ['defaults', 'tenant', 'ring'],
    marker: '"ring": "sandbox"',
    says: ['"sandbox"', 'canary, general'],
  },
];

function lineOf(text: string, marker: string, offset = 0, nth = 1): number {
  const lines = text.split('\n');
  const hits = lines.flatMap((l, i) => (l.includes(marker) ? [i] : []));
  if (hits.length < nth) throw new Error(`marker ${marker} not ${nth} times in\n${text}`);
  return hits[nth - 1]! + 1 + offset;
}

describe('invalid registries', () => {
  test('there are at least 40 cases', () => expect(cases.length).toBeGreaterThanOrEqual(40));

  test.each(cases.map((c) => [c.name, c] as const))('%s', (_, c) => {
    let text = c.text;
    if (!text) {
      const r = baseRegistry();
      c.mutate!(r);
      text = JSON.stringify(r, null, 2);
    }
    const problems = problemsOf(text);
    expect(problems.length).toBeGreaterThanOrEqual(1);
    const p = problems.find((x) => JSON.stringify(x.path) === JSON.stringify(c.path));
    if (!p)
      throw new Error(
        `no problem at ${JSON.stringify(c.path)}; got:\n${problems.map((x) => `${JSON.stringify(x.path)} ${x.message}`).join('\n')}`,
      );
    expect(p.source).toBe('reg.json');
    expect(p.line).toBe(lineOf(text, c.marker, c.offset, c.nth));
    expect(p.column).toBeGreaterThanOrEqual(1);
    const words = `${p.message} ${p.hint ?? ''}`;
    for (const w of c.says) expect(words).toContain(w);
  });
});

describe('every problem at once', () => {
  test('problems in several servers, defaults and across entries are all reported, in line order', () => {
    const r = baseRegistry();
    r.defaults = { tenant: { ring: 'nope' } };
    r.servers[0].port = 0;
    r.servers[0].tenants.push(tenant('acme', 8080));
    r.servers.push({
      name: 'Bad',
      host: '10.0.0.2',
      region: 'eu',
      tenants: [tenant('globex', 1, { id: 'GLOBEX' })],
    });
    const text = JSON.stringify(r, null, 2);
    const problems = problemsOf(text);
    const paths = problems.map((p) => JSON.stringify(p.path));
    expect(paths).toEqual(
      expect.arrayContaining([
        JSON.stringify(['servers', 0, 'port']),
        JSON.stringify(['servers', 0, 'tenants', 1, 'id']),
        JSON.stringify(['servers', 1, 'name']),
        JSON.stringify(['servers', 1, 'tenants', 0, 'id']),
        // the ring from defaults is reported on the valid tenants of the valid-enough server
        JSON.stringify(['defaults', 'tenant', 'ring']),
      ]),
    );
    const lines = problems.map((p) => p.line!);
    expect([...lines].sort((a, b) => a - b)).toEqual(lines);
  });
});

describe('one typo, one error', () => {
  const text = (block: string) =>
    JSON.stringify(
      {
        defaults: {
          server: { user: 'deploy', region: 'eu' },
          tenant: {
            path: '/srv/app/{tenant}',
            images: [{ variable: 'APP_IMAGE', repository: 'ghcr.io/acme/app' }],
            [block]: { port: 8080, path: '/health' },
          },
        },
        servers: [
          {
            name: 'eu-1',
            host: '203.0.113.10',
            hostKey: ED25519,
            tenants: ['acme', 'globex', 'initech'].map((id, i) => ({ id, health: { port: 8080 + i } })),
          },
        ],
      },
      null,
      2,
    );

  test('a typo in defaults.tenant is reported once; the rest of defaults still applies to every tenant', () => {
    const problems = problemsOf(text('helth'));
    expect(problems.map((p) => [p.path.join('.'), p.message, p.hint])).toEqual([
      ['defaults.tenant.helth', 'unknown key "helth"', expect.stringContaining('did you mean "health"?')],
    ]);
  });

  test("a typo in a server's tenantDefaults keeps its tenants checked with the valid part", () => {
    const r = JSON.parse(text('health'));
    r.servers[0].tenantDefaults = { keepReleses: 3, ring: 'nope' };
    // the ring the valid part sets is still checked on its tenants (the server is not dropped)
    expect([...new Set(problemsOf(JSON.stringify(r, null, 2)).map((p) => p.path.join('.')))]).toEqual([
      'servers.0.tenantDefaults.keepReleses',
      'servers.0.tenantDefaults.ring',
    ]);
  });
});
