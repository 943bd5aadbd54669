/**
 * The registry file's schema: the shape of servers/*.json exactly as a person writes it. Everything is
 * strict (unknown keys are errors) and every string that can reach a remote shell matches a pattern from
 * patterns.ts. Fields that `defaults` can supply are optional here; resolve.ts merges and then requires them.
 */
import { z } from 'zod';
import * as P from './patterns';
import { parseHostKey } from './hostkey';
import { ANALYSIS_PLACEHOLDERS, unknownPlaceholders } from '../analysis/template';
import { conditionProblem } from '../analysis/condition';

/** A string matching a pattern, with the pattern's words in the error and the JSON Schema. */
function str(pattern: P.Pattern, noun: string, description: string, example = pattern.example) {
  return z
    .string({ error: `must be a string: ${noun}` })
    .regex(pattern.re, { error: `is not a valid ${noun}: use ${pattern.valid}, e.g. "${example}"` })
    .meta({ description, examples: [example] });
}

const port = (description: string) =>
  z
    .int({ error: 'must be a whole number from 1 to 65535' })
    .min(1, { error: 'must be a port number from 1 to 65535' })
    .max(65535, { error: 'must be a port number from 1 to 65535' })
    .meta({ description });

const duration = (description: string) => str(P.DURATION, 'duration', description);

/** "a value or a list of values": one way to write both the common single case and the rare list. */
function oneOrMany<T extends z.ZodType>(item: T, description: string) {
  return z
    .union([item, z.array(item).min(1, { error: 'must list at least one value' })])
    .meta({ description });
}

const noDotSegments = (what: string) => (v: string) =>
  !P.hasDotSegment(v) || `"." and ".." segments are not allowed in ${what}`;

function refineString<T extends z.ZodString>(schema: T, check: (v: string) => true | string) {
  return schema.check((ctx) => {
    const result = check(ctx.value);
    if (result !== true) ctx.issues.push({ code: 'custom', message: result, input: ctx.value });
  });
}

/** Fields that may hold {placeholders} accept only the known ones. */
const knownPlaceholders = (v: string): true | string => {
  for (const [, name] of v.matchAll(/\{([^}]*)\}/g)) {
    if (!(P.PLACEHOLDERS as readonly string[]).includes(name!))
      return `uses the unknown placeholder {${name}}: use ${P.PLACEHOLDERS.map((x) => `{${x}}`).join(', ')}`;
  }
  return true;
};

export const hostKeySchema = refineString(
  str(P.HOST_KEY, 'host key', 'A pinned host key: the public key line or its SHA256 fingerprint.'),
  (v) => {
    const parsed = parseHostKey(v);
    return typeof parsed === 'string' ? parsed : true;
  },
);

const labels = z
  .record(str(P.KEY, 'label key', 'Label key.'), str(P.LABEL_VALUE, 'label value', 'Label value.'))
  .meta({
    description:
      'Free-form labels for selection, e.g. {"tier": "enterprise"}. Tenant labels override server labels.',
  });

const jump = z
  .strictObject({
    host: str(P.HOST, 'host', 'The jump (bastion) host.'),
    port: port('SSH port of the jump host.').optional(),
    user: str(P.USER, 'user name', 'SSH user on the jump host.').optional(),
    hostKey: oneOrMany(hostKeySchema, 'Pinned host key(s) of the jump host.').optional(),
  })
  .meta({ description: 'Reach this server through an SSH jump host (ProxyJump).' });

export const composeCommands = [
  'docker compose',
  'docker-compose',
  'podman compose',
  'podman-compose',
] as const;

const compose = z
  .strictObject({
    file: oneOrMany(
      refineString(
        str(P.RELATIVE_FILE, 'compose file', 'A Compose file relative to the tenant path.'),
        noDotSegments('a compose file'),
      ),
      "Compose file(s), relative to the tenant path, passed with -f in order; Compose reads the tenant's " +
        '.env even when the first sits in a subdirectory (given --env-file). Default: "docker-compose.yml".',
    ).optional(),
    command: z
      .enum(composeCommands, { error: `must be one of ${composeCommands.map((c) => `"${c}"`).join(', ')}` })
      .meta({ description: 'The Compose command on the server. Default: "docker compose".' })
      .optional(),
    project: refineString(
      str(
        P.COMPOSE_PROJECT_TEMPLATE,
        'compose project name',
        'Compose project name (-p). May use {tenant}, {server}, {region}, {ring}. Default: none, so Compose uses the directory name.',
        'app-{tenant}',
      ),
      knownPlaceholders,
    ).optional(),
    services: z
      .array(str(P.SERVICE, 'service name', 'A Compose service.'))
      .min(1, { error: 'must list at least one service, or be left out for all services' })
      .meta({ description: 'Only these services are pulled and restarted. Default: all services.' })
      .optional(),
  })
  .meta({ description: "How the tenant's stack is run." });

const image = z
  .strictObject({
    variable: str(
      P.ENV_VAR,
      'variable name',
      "The variable in the tenant's .env that holds the image reference.",
    ),
    repository: str(
      P.IMAGE_REPOSITORY,
      'image repository',
      'The image repository; a deploy sets VARIABLE=repository:tag or repository@digest.',
    ),
    service: oneOrMany(
      str(P.SERVICE, 'service name', 'A Compose service.'),
      'The Compose service(s) that run this image. When every image names its services, the in-place ' +
        'switch restarts only the services whose image changed (`up -d --no-deps SERVICE…`). Default: ' +
        'none, so every service is restarted.',
    ).optional(),
  })
  .meta({ description: "One image of the stack, set through a variable in the tenant's .env." });

const jsonExpectation = z
  .record(
    z.string().regex(/^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$/, {
      error: 'is not a JSON field path: use names joined by ".", e.g. "build.version"',
    }),
    z.union([z.string(), z.number(), z.boolean()]),
  )
  .meta({
    description:
      'Fields the JSON body must hold, by dotted path, e.g. {"status": "ok", "version": "{version}"}. ' +
      '"{version}" is replaced by the version being deployed, so a stale container cannot pass.',
  });

const health = z
  .strictObject({
    port: port(
      "Port on the server's 127.0.0.1, probed through the SSH connection (no curl needed on the server).",
    ).optional(),
    path: str(P.HTTP_PATH, 'HTTP path', 'Path probed on that port. Default: "/health".').optional(),
    url: refineString(
      z
        .string({ error: 'must be a string: URL' })
        .regex(/^https?:\/\/[^\s"'`\\]+$/, { error: 'is not an http:// or https:// URL' })
        .meta({
          description:
            'A public URL probed from the runner instead of through SSH. May use {tenant}, {server}, {region}, {ring}.',
        }),
      knownPlaceholders,
    ).optional(),
    expectStatus: z
      .int({ error: 'must be an HTTP status code' })
      .min(100, { error: 'must be an HTTP status code from 100 to 599' })
      .max(599, { error: 'must be an HTTP status code from 100 to 599' })
      .meta({ description: 'Expected HTTP status. Default: 200.' })
      .optional(),
    bodyIncludes: z
      .string()
      .min(1)
      .meta({ description: 'Text the body must contain. May use {version}.' })
      .optional(),
    json: jsonExpectation.optional(),
    interval: duration(
      'The pause after each probe before the next (not a period: a slow answer delays the next probe). Default: "2s".',
    ).optional(),
    timeout: duration('Timeout of one probe. Default: "5s".').optional(),
    deadline: duration(
      'How long the gate waits for the service to become stable. Default: "120s".',
    ).optional(),
    successes: z
      .int({ error: 'must be a whole number' })
      .min(1, { error: 'must be at least 1' })
      .max(100, { error: 'must be at most 100' })
      .meta({
        description: 'Consecutive successful probes needed to pass, so a flapping service fails. Default: 3.',
      })
      .optional(),
    containerHealth: z
      .boolean({ error: 'must be true or false' })
      .meta({
        description: "Also require the containers' own HEALTHCHECK state to be healthy. Default: false.",
      })
      .optional(),
  })
  .meta({ description: 'The health gate: a deploy passes only when this check is stable.' });

/** A user's shell command, run on the server in the tenant's directory. Shell by design, like a CI step. */
const shellCommand = (description: string) =>
  z
    .string({ error: 'must be a string: a shell command' })
    .min(1, { error: 'must not be empty' })
    .max(4000, { error: 'is longer than 4000 characters; put it in a script on the server' })
    .regex(/^[^\0\r]*$/, { error: 'must not contain NUL or carriage-return characters' })
    .meta({ description });

const hook = z.union([
  shellCommand('A command.'),
  z.strictObject({
    run: shellCommand('The command. $FLEET_VERSION, $FLEET_PREVIOUS_VERSION and $FLEET_TARGET are set.'),
    once: z
      .boolean({ error: 'must be true or false' })
      .meta({
        description:
          'Run once per rollout, on its first target only (e.g. database migrations that must not race).',
      })
      .optional(),
    timeout: duration('How long the hook may run. Default: "10m".').optional(),
  }),
]);

const hookList = (description: string) =>
  z.array(hook).meta({
    description: `${description} A command string or {run, once, timeout}; a failing hook fails the step.`,
  });

const hooks = z
  .strictObject({
    preDeploy: hookList('Run after the backup, before the new image is pulled.').optional(),
    postDeploy: hookList('Run after the health gate passed.').optional(),
    onRollback: hookList('Run after an automatic rollback restored the previous release.').optional(),
  })
  .meta({ description: 'Commands run at points of a deploy, in the tenant directory.' });

const backup = z
  .strictObject({
    paths: z
      .array(
        refineString(
          str(P.RELATIVE_FILE, 'backup path', 'A file or directory relative to the tenant path.', 'config'),
          noDotSegments('a backup path'),
        ),
      )
      .meta({ description: 'Config files or directories to archive besides .env and the compose files.' })
      .optional(),
    keepDays: z
      .int({ error: 'must be a whole number of days' })
      .min(1, { error: 'must be at least 1' })
      .max(3650, { error: 'must be at most 3650' })
      .meta({ description: 'Archives older than this are deleted. Default: 7.' })
      .optional(),
    keepCount: z
      .int({ error: 'must be a whole number of archives' })
      .min(1, { error: 'must be at least 1' })
      .max(1000, { error: 'must be at most 1000' })
      .meta({ description: 'Only the newest N archives are kept. Default: no limit by count.' })
      .optional(),
    command: shellCommand(
      'A command run before the archive, e.g. a pg_dump into a backed-up path.',
    ).optional(),
    dump: z
      .strictObject({
        command: shellCommand(
          'Prints the database dump on stdout, run in the tenant directory with COMPOSE_FILE and ' +
            'COMPOSE_PROJECT_NAME set to the tenant\'s, e.g. "docker compose exec -T db pg_dump -U app app". ' +
            'A deploy to a tenant with no container running archives its files without the dump.',
        ),
        restore: shellCommand(
          'Reads a dump on stdin and loads it, run like `command`, e.g. "docker compose exec -T db sh -c ' +
            "'dropdb -U app --force app && createdb -U app app && psql -U app -d app -1 -v " +
            'ON_ERROR_STOP=1\'" (a restore into a fresh database: psql alone keeps the tables made since the ' +
            'backup). Used by `fleet-deploy restore --database`.',
        ).optional(),
        file: refineString(
          str(
            P.RELATIVE_FILE,
            'dump file name',
            'Name of the dump inside the archive. Default: "dump.sql".',
            'dump.sql',
          ),
          noDotSegments('a dump file name'),
        ).optional(),
      })
      .meta({ description: "A database dump taken through the tenant's containers into each archive." })
      .optional(),
  })
  .meta({
    description:
      'Archive .env, the compose files, these paths and a database dump into .fleet/backups/ (gzip, ' +
      'with a sha256 checksum) before each deploy and on `fleet-deploy backup`.',
  });

const commandsFields = {
  deploy: shellCommand(
    'Deploys $FLEET_VERSION, e.g. "git fetch && git checkout \\"$FLEET_VERSION\\" && npm ci && pm2 restart app".',
  ),
  rollback: shellCommand(
    'Restores $FLEET_PREVIOUS_VERSION. Without it, rollback runs `deploy` with the previous version.',
  ).optional(),
  current: shellCommand('Prints the version running now (one line).'),
};
const COMMANDS_DESCRIPTION =
  'Deploy with your own commands instead of Compose (stacks that are not containers). ' +
  'The lock, health gate, rollback and history still apply.';
const commands = z.strictObject(commandsFields).meta({
  description: `${COMMANDS_DESCRIPTION} The same as "strategy": {"kind": "commands", …}.`,
});

const proxy = z
  .discriminatedUnion(
    'kind',
    [
      z
        .strictObject({
          kind: z.literal('caddy'),
          admin: port("The Caddy admin API's port on the server's 127.0.0.1. Default: 2019.").optional(),
          route: refineString(
            str(
              P.CADDY_ID_TEMPLATE,
              'Caddy @id',
              'The "@id" of the tenant\'s reverse_proxy handler in the Caddy config; its upstreams are ' +
                'replaced at /id/ROUTE/upstreams. May use {tenant}, {server}, {region}, {ring}. Default: "fleet-{tenant}".',
              'fleet-{tenant}',
            ),
            knownPlaceholders,
          ).optional(),
        })
        .meta({
          description:
            "Caddy, switched through its admin API on the server's 127.0.0.1 (curl on the server).",
        }),
      z
        .strictObject({
          kind: z.literal('nginx'),
          upstreamFile: refineString(
            str(
              P.REMOTE_PATH_TEMPLATE,
              'path',
              "The file holding the upstream's one `server 127.0.0.1:PORT;` line, included in an `upstream { " +
                '}` block; written atomically by the deploy user. May use {tenant}, {server}, {region}, {ring}.',
              '/etc/nginx/fleet/{tenant}.conf',
            ),
            (v) =>
              P.hasDotSegment(v) ? '"." and ".." segments are not allowed in a path' : knownPlaceholders(v),
          ),
          check: shellCommand(
            'Checks the configuration before the reload. Default: "nginx -t -q".',
          ).optional(),
          reload: shellCommand(
            'Reloads nginx (old workers finish their requests). Default: "nginx -s reload".',
          ).optional(),
        })
        .meta({
          description: 'nginx: an upstream file written atomically, checked, then `nginx -s reload`.',
        }),
      z.strictObject({ kind: z.literal('flag-file') }).meta({
        description:
          'Any proxy that picks the live slot per request by which flag file exists, ' +
          '.fleet/slots/live-blue or .fleet/slots/live-green in the tenant directory (Caddy: a `file` ' +
          'matcher; nginx: `if (-f …)`): the switch renames one into the other, with no proxy reload.',
      }),
      z
        .strictObject({
          kind: z.literal('command'),
          switch: shellCommand(
            'Points the tenant at 127.0.0.1:$FLEET_UPSTREAM_PORT ($FLEET_UPSTREAM is "127.0.0.1:PORT"); ' +
              'exits non-zero when the proxy refused.',
          ),
          current: shellCommand(
            'Prints the port the proxy sends the tenant to now (one line); fails when the proxy is down.',
          ),
        })
        .meta({ description: 'Any other proxy, switched by your own commands.' }),
    ],
    { error: 'must have "kind": "flag-file", "caddy", "nginx" or "command"' },
  )
  .meta({ description: 'The reverse proxy in front of the two slots.' });

const slot = (name: string) =>
  z
    .strictObject({ port: port(`The ${name} slot's port on the server's 127.0.0.1 (its PORT variable).`) })
    .meta({ description: `The ${name} slot.` });

/** The registry's `strategy`: one member per kind of `Strategy` (registry/model.ts). */
export const strategy = z
  .discriminatedUnion(
    'kind',
    [
      z
        .strictObject({ kind: z.literal('in-place') })
        .meta({ description: 'Switch the image variables in .env and `compose up -d` (the default).' }),
      z
        .strictObject({ kind: z.literal('commands'), ...commandsFields })
        .meta({ description: COMMANDS_DESCRIPTION }),
      z
        .strictObject({
          kind: z.literal('blue-green'),
          slots: z.strictObject({ blue: slot('blue'), green: slot('green') }).meta({
            description:
              'Two slots, each its own Compose project (PROJECT-blue, PROJECT-green) on its own port.',
          }),
          portVariable: str(
            P.ENV_VAR,
            'variable name',
            'The variable the compose file publishes the app on, set per slot. Default: "APP_PORT".',
            'APP_PORT',
          ).optional(),
          proxy,
          drainTimeout: duration(
            'How long the old slot may finish its requests after the switch before it is stopped. Default: "30s".',
          ).optional(),
        })
        .meta({
          description:
            'Start the new release in the idle slot beside the live one, gate it directly, switch the proxy, ' +
            'verify through it (health.port is the port the proxy serves the tenant on), drain and stop the ' +
            'old slot.',
        }),
    ],
    { error: 'must have "kind": "in-place", "commands" or "blue-green"' },
  )
  .meta({ description: 'How a release is switched. Default: in place.' });

/** A file-variable name: {NAME} in a templated file. */
const FILE_VAR: P.Pattern = {
  re: /^[A-Z][A-Z0-9_]{0,63}$/,
  valid: 'upper-case letters, digits and "_"',
  example: 'POLICY_VERSION',
};

/** A shipped file's path: relative, plain segments; a directory ends in "/". */
const SHIPPED_PATH: P.Pattern = {
  re: new RegExp(P.RELATIVE_FILE.re.source.replace(/\$$/, '/?$')),
  valid: 'a relative path of letters, digits, ".", "_", "-" and "/" (a directory ends in "/"; no "..")',
  example: 'deploy/docker-compose.yml',
};

const shippedFile = z
  .strictObject({
    from: refineString(
      str(
        SHIPPED_PATH,
        'repository path',
        'A file or directory (ending in "/") of the repository the deploy runs from, relative to its root.',
        'deploy/docker-compose.yml',
      ),
      noDotSegments('a repository path'),
    ),
    to: refineString(
      str(
        SHIPPED_PATH,
        'tenant path',
        'Where it goes, relative to the tenant directory (a directory ends in "/"). Not .env, not under .fleet.',
        'docker-compose.yml',
      ),
      (v) =>
        P.hasDotSegment(v)
          ? '"." and ".." segments are not allowed in a tenant path'
          : /^(\.env|\.fleet)(\/|$)/.test(v)
            ? `${v.split('/')[0]} is the tool's own: a file shipped there would replace what a deploy writes; ship it elsewhere`
            : true,
    ),
    sha256: z
      .string()
      .regex(/^[a-f0-9]{64}$/, { error: 'must be a sha256: 64 lower-case hex digits' })
      .meta({
        description:
          "The file's expected sha256 (of a single file, before templating): refused when it differs.",
      })
      .optional(),
    template: z
      .boolean()
      .meta({
        description:
          'Replace {tenant}, {server}, {region}, {ring} and {NAME} of the declared variables in it (never ${…}). Default: false.',
      })
      .optional(),
  })
  .meta({ description: 'A file or directory shipped with each release.' });

const fileVariable = z.union([
  z.string().max(4096).meta({ description: 'The value.' }),
  z
    .strictObject({
      env: str(
        P.ENV_VAR,
        'variable name',
        "The runner's environment variable that holds the value.",
        'POLICY_TOKEN',
      ),
      secret: z
        .boolean()
        .meta({ description: 'Redact its value in plans and dry runs. Default: true.' })
        .optional(),
    })
    .meta({ description: "A value from the runner's environment (only when declared here)." }),
]);

const files = z
  .strictObject({
    ship: z
      .array(shippedFile)
      .meta({ description: 'The files shipped with each release. A list replaces the one in defaults.' })
      .optional(),
    variables: z
      .record(str(FILE_VAR, 'file variable name', 'A variable of templated files.'), fileVariable)
      .meta({ description: 'Variables of templated files, {NAME} in them.' })
      .optional(),
  })
  .meta({
    description:
      'Files of the repository (compose files, config bundles) shipped with each release, pinned by ' +
      'sha256, rolled back with the images (docs/release-channels.md).',
  });

/** Tenant fields that `defaults.tenant` and `servers[].tenantDefaults` may also set. */
const tenantFields = {
  path: refineString(
    str(
      P.REMOTE_PATH_TEMPLATE,
      'path',
      "The tenant's directory on the server (holds .env and the compose files). May use {tenant}, {server}, {region}, {ring}.",
      '/srv/tenants/{tenant}',
    ),
    (v) => (P.hasDotSegment(v) ? '"." and ".." segments are not allowed in a path' : knownPlaceholders(v)),
  ).optional(),
  compose: compose.optional(),
  images: z
    .array(image)
    .min(1, { error: 'must list at least one image' })
    .meta({ description: 'The images a deploy sets. A list replaces (does not extend) the one in defaults.' })
    .optional(),
  health: health.optional(),
  hooks: hooks.optional(),
  files: files.optional(),
  backup: backup.optional(),
  commands: commands.optional(),
  strategy: strategy.optional(),
  keepReleases: z
    .int({ error: 'must be a whole number' })
    .min(1, { error: 'must be at least 1 (the running release)' })
    .max(100, { error: 'must be at most 100' })
    .meta({
      description:
        'Images of the last N releases are kept; older ones are pruned after a deploy. Default: 3.',
    })
    .optional(),
  minFreeDiskMb: z
    .int({ error: 'must be a whole number of MiB' })
    .min(0, { error: 'must be 0 or more' })
    .meta({
      description:
        "Preflight fails when the tenant directory's filesystem has less free space (MiB). Default: 1024.",
    })
    .optional(),
  ring: str(
    P.NAME,
    'ring',
    'Rollout ring, one of `rings`. Default: the last ring ("general").',
    'canary',
  ).optional(),
  labels: labels.optional(),
  hibernated: z
    .enum(['restore', 'wake'], { error: 'must be "restore" or "wake"' })
    .meta({
      description:
        'A deploy to a tenant whose containers are paused or stopped (hibernated): "restore" deploys, ' +
        'gates, then pauses or stops them again; "wake" leaves them running. Default: "restore".',
    })
    .optional(),
};

const tenantDefaults = z
  .strictObject(tenantFields)
  .meta({ description: 'Tenant fields applied to every tenant it covers.' });

export const tenantSchema = z
  .strictObject({
    id: str(P.TENANT_ID, 'tenant id', 'Unique tenant id across the registry.'),
    ...tenantFields,
  })
  .meta({ description: 'One tenant: one Compose stack in one directory on the server.' });

const serverFields = {
  port: port('SSH port. Default: 22.').optional(),
  user: str(P.USER, 'user name', 'SSH user. Default: "deploy".').optional(),
  region: str(P.NAME, 'region', 'Region, for selection and reports.', 'eu').optional(),
  labels: labels.optional(),
  jump: jump.optional(),
};

export const serverSchema = z
  .strictObject({
    name: str(P.NAME, 'server name', 'Unique server name, used in target ids "server/tenant".', 'eu-1'),
    host: str(P.HOST, 'host', 'Host name or IP address the runner connects to.'),
    hostKey: oneOrMany(
      hostKeySchema,
      'Pinned SSH host key(s). Without one, a deploy needs a known_hosts text; it never trusts an unknown key.',
    ).optional(),
    ...serverFields,
    tenantDefaults: tenantDefaults.optional(),
    tenants: z.array(tenantSchema).meta({ description: 'The tenants on this server.' }),
  })
  .meta({ description: 'One server, reached over SSH.' });

/** A check's query, URL or command accepts only the analysis placeholders. */
const analysisPlaceholders = (v: string): true | string => {
  const unknown = unknownPlaceholders(v);
  return unknown.length
    ? `uses the unknown placeholder {${unknown[0]}}: use ${ANALYSIS_PLACEHOLDERS.map((x) => `{${x}}`).join(', ')}`
    : true;
};

const analysisUrl = (description: string) =>
  refineString(
    z
      .string({ error: 'must be a string: URL' })
      .regex(/^https?:\/\/[^\s"'`\\]+$/, { error: 'is not an http:// or https:// URL' })
      .meta({ description }),
    analysisPlaceholders,
  );

const condition = (description: string) =>
  z
    .string({ error: 'must be a string: a CEL expression' })
    .min(1, { error: 'must not be empty' })
    .max(2000, { error: 'is longer than 2000 characters' })
    .meta({ description, examples: ['result.all(v, v < 0.03)'] });

const count = (description: string) =>
  z.int({ error: 'must be a whole number' }).min(0, { error: 'must be 0 or more' }).meta({ description });

const INCONCLUSIVE = ['stop', 'continue', 'pause'] as const;
const ROLLBACK = ['wave', 'all', 'none'] as const;

const analysisCheck = z
  .strictObject({
    name: str(
      P.NAME,
      'check name',
      "The check's name, in reports and in `rings.*.checks`.",
      'heartbeat-drop',
    ),
    prometheus: z
      .strictObject({
        url: analysisUrl(
          'Prometheus\' base URL, e.g. "http://prometheus:9090"; the check asks /api/v1/query.',
        ),
        query: refineString(
          z
            .string({ error: 'must be a string: a PromQL query' })
            .min(1, { error: 'must not be empty' })
            .meta({
              description:
                'A PromQL instant query. {tenants}, {servers}, {otherTenants} and {ring} are regexes for ' +
                '`=~"…"`; every placeholder is escaped for a PromQL string.',
            }),
          analysisPlaceholders,
        ),
      })
      .meta({ description: "An instant query over Prometheus' HTTP API." })
      .optional(),
    http: z
      .strictObject({
        url: analysisUrl(
          'The endpoint, asked with GET from where the rollout runs. Placeholders are URL-encoded.',
        ),
      })
      .meta({ description: 'An HTTP endpoint; its status, body and JSON are the variables.' })
      .optional(),
    command: refineString(
      shellCommand(
        "Run on each target of the wave, in the tenant directory, over the deploy's SSH connection; exit " +
          '0 passes. Placeholders become quoted words; $FLEET_VERSION, $FLEET_PREVIOUS_VERSION, ' +
          '$FLEET_TARGET, $FLEET_WAVE are set.',
      ),
      analysisPlaceholders,
    ).optional(),
    successCondition: condition(
      'CEL: the measurement is successful when true (with failureCondition too: inconclusive when ' +
        'neither holds). Default for http: "status >= 200 && status < 300".',
    ).optional(),
    failureCondition: condition(
      'CEL: the measurement failed when true. Default for command: "failed > 0"; use e.g. "failedPercent > 1".',
    ).optional(),
    interval: duration("Time between measurements. Default: the analysis's interval.").optional(),
    count: z
      .int({ error: 'must be a whole number' })
      .min(1, { error: 'must be at least 1' })
      .meta({ description: 'Measurements to take. Default: one every interval until the soak is over.' })
      .optional(),
    failureLimit: count('Failed measurements tolerated; one more fails the check. Default: 0.').optional(),
    inconclusiveLimit: count(
      'Inconclusive measurements tolerated; one more makes the check inconclusive. Default: 0.',
    ).optional(),
    timeout: duration('How long one measurement may take. Default: "10s" (command: "60s").').optional(),
    dryRun: z
      .boolean({ error: 'must be true or false' })
      .meta({
        description:
          'Measure and report, never stop the rollout: how a new check is introduced. Default: false.',
      })
      .optional(),
  })
  .check((ctx) => {
    const v = ctx.value;
    const kinds = (['prometheus', 'http', 'command'] as const).filter((k) => v[k] !== undefined);
    if (kinds.length !== 1)
      ctx.issues.push({
        code: 'custom',
        input: v,
        message: kinds.length
          ? `has ${kinds.join(' and ')}: a check is exactly one of prometheus, http or command`
          : 'says nothing to measure: give one of prometheus, http or command',
      });
    const kind = kinds[0];
    if (kind === 'prometheus' && !v.successCondition && !v.failureCondition)
      ctx.issues.push({
        code: 'custom',
        input: v,
        path: ['failureCondition'],
        message: 'is missing: a prometheus check needs a successCondition or a failureCondition',
      });
    for (const field of ['successCondition', 'failureCondition'] as const) {
      const text = v[field];
      const problem = kind && text ? conditionProblem(text, kind) : undefined;
      if (problem)
        ctx.issues.push({
          code: 'custom',
          input: text,
          path: [field],
          message: problem,
        });
    }
  })
  .meta({ description: 'One check: exactly one of prometheus, http or command, and its conditions.' });

const analysis = z
  .strictObject({
    soak: duration(
      'How long each wave runs, measured, before the next one starts. Default: "0s" (one measurement).',
    ).optional(),
    interval: duration('Default time between a check\'s measurements. Default: "30s".').optional(),
    inconclusive: z
      .enum(INCONCLUSIVE, { error: `must be one of ${INCONCLUSIVE.join(', ')}` })
      .meta({
        description:
          'When a check is inconclusive (no data, a query error, a timeout): "stop" the rollout (default), ' +
          '"continue", or "pause" for a person (fleet mode stops without rolling back; the workflow waits ' +
          "for an environment's approval).",
      })
      .optional(),
    rollback: z
      .enum(ROLLBACK, { error: `must be one of ${ROLLBACK.join(', ')}` })
      .meta({
        description:
          'After a failed analysis: roll back the "wave" that failed (default), "all" waves done so far, ' +
          'or "none" (the targets stay for a person to look at).',
      })
      .optional(),
    rings: z
      .record(
        str(P.NAME, 'ring', 'A ring name.', 'canary'),
        z.strictObject({
          soak: duration(
            'The soak of a wave of this ring (a wave of several rings soaks the longest).',
          ).optional(),
          checks: z
            .array(str(P.NAME, 'check name', 'A check name.', 'heartbeat-drop'))
            .meta({ description: 'Only these checks after a wave of this ring. Default: all.' })
            .optional(),
        }),
      )
      .meta({ description: 'Per ring: its own soak, and which checks it runs.' })
      .optional(),
    checks: z
      .array(analysisCheck)
      .min(1, { error: 'must list at least one check' })
      .meta({ description: 'The checks measured after each wave but the last.' }),
  })
  .meta({
    description:
      'Analysis between waves: checks measured while each wave soaks; a failed one stops the rollout (docs/analysis.md).',
  });

const rollout = z
  .strictObject({ analysis: analysis.optional() })
  .meta({ description: 'How a rollout proceeds from wave to wave.' });

export const DEFAULT_RINGS = ['sandbox', 'canary', 'general'] as const;

export const registrySchema = z
  .strictObject({
    $schema: z
      .string()
      .meta({ description: 'The JSON Schema, for editors: "./registry.schema.json".' })
      .optional(),
    version: z
      .literal(1, { error: 'must be 1, the only registry format version' })
      .meta({ description: 'Registry format version.' })
      .optional(),
    rings: z
      .array(str(P.NAME, 'ring', 'A ring name.', 'canary'))
      .min(1, { error: 'must list at least one ring' })
      .meta({ description: 'Rollout rings in deploy order. Default: ["sandbox", "canary", "general"].' })
      .optional(),
    defaults: z
      .strictObject({
        server: z
          .strictObject(serverFields)
          .meta({ description: 'Server fields applied to every server.' })
          .optional(),
        tenant: tenantDefaults.optional(),
      })
      .meta({
        description:
          'Values that servers and tenants inherit and may override (objects merge key by key; lists replace).',
      })
      .optional(),
    rollout: rollout.optional(),
    servers: z.array(serverSchema).meta({ description: 'The fleet.' }),
    placeholders: z
      .record(z.string(), z.union([z.string(), z.number()]))
      .meta({
        description:
          'Written by init: the JSON path of each value it could not know (a health port, a stand-in ' +
          'image) and the value it wrote there. `validate` flags each while it still has that value.',
      })
      .optional(),
  })
  .meta({
    title: 'fleet-deploy server registry',
    description: 'Servers and the tenants on each, for fleet-deploy.',
  });

export type RegistryFile = z.input<typeof registrySchema>;
export type RawServer = z.input<typeof serverSchema>;
export type RawTenant = z.input<typeof tenantSchema>;
export type RawTenantFields = z.input<typeof tenantDefaults>;
export type RawHealth = z.input<typeof health>;
export type RawAnalysis = z.input<typeof analysis>;
export type RawFiles = z.input<typeof files>;

/** The JSON Schema for editors, generated from the zod schema (servers/registry.schema.json). */
export function registryJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(registrySchema, {
    target: 'draft-2020-12',
    io: 'input',
    unrepresentable: 'any',
  });
  return schema as Record<string, unknown>;
}
