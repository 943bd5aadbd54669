/**
 * The plan's matrices, as the runner would use them: the output is evaluated with GitHub's own expression
 * engine (`fromJSON(needs.plan.outputs.matrices)[i]`) and the result is put in a workflow's
 * `strategy.matrix` and parsed by GitHub's workflow parser.
 */
import { Evaluator, Lexer, Parser, data } from '@actions/expressions';
import { NoOperationTraceWriter, parseWorkflow } from '@actions/workflow-parser';
import { matrices, planDeployment, waveOneRest } from '../src/plan/plan';
import { fleet } from './helpers/fleet';

function evaluate(expression: string, outputs: Record<string, string>): unknown {
  const { tokens } = new Lexer(expression).lex();
  const expr = new Parser(tokens, ['needs'], []).parse();
  const out = new data.Dictionary(
    ...Object.entries(outputs).map(([key, v]) => ({ key, value: new data.StringData(v) })),
  );
  const needs = new data.Dictionary({
    key: 'plan',
    value: new data.Dictionary({ key: 'outputs', value: out }),
  });
  const result = new Evaluator(
    expr,
    new data.Dictionary({ key: 'needs', value: needs }),
    undefined,
  ).evaluate();
  return JSON.parse(JSON.stringify(result, data.replacer));
}

function workflowErrors(matrix: unknown): string[] {
  const content = [
    'on: push',
    'jobs:',
    '  deploy:',
    '    runs-on: ubuntu-latest',
    '    strategy:',
    '      fail-fast: false',
    `      matrix: ${JSON.stringify(matrix)}`,
    '    name: ${{ matrix.name }}',
    '    steps:',
    '      - run: echo "$TARGETS"',
    '        env:',
    '          TARGETS: ${{ matrix.targets }}',
  ].join('\n');
  const result = parseWorkflow({ name: 'deploy.yml', content }, new NoOperationTraceWriter());
  return result.context.errors.getErrors().map((e) => e.message);
}

test.each([
  [11, '1,5%,25%,100%', 1],
  [1000, '1,5%,25%,100%', 1],
  [10000, '1,5%,25%,100%', 1],
  [600, 'all', 4],
])('%i targets (%s, max-per-job %i): every wave matrix evaluates and parses', (n, waves, maxPerJob) => {
  const plan = planDeployment(fleet(n), { waves, maxPerJob });
  const outputs = { matrices: JSON.stringify(matrices(plan)), 'wave-count': String(plan.plan.length) };
  expect(evaluate("fromJSON(needs.plan.outputs['wave-count'])", outputs)).toBe(plan.plan.length);
  let seen = 0;
  plan.plan.forEach((wave, i) => {
    const matrix = evaluate(`fromJSON(needs.plan.outputs.matrices)[${i}]`, outputs) as {
      include: Array<Record<string, unknown>>;
    };
    expect(matrix.include.length).toBe(wave.jobs.length);
    expect(matrix.include.length).toBeLessThanOrEqual(256);
    for (const job of matrix.include) {
      expect(Object.keys(job).sort()).toEqual(['count', 'name', 'targets', 'wave']);
      seen += (job.targets as string).split(' ').length;
    }
    expect(workflowErrors(matrix)).toEqual([]);
  });
  expect(seen).toBe(n);
  // Past the last wave the expression is null, which the workflow guards with wave-count.
  expect(evaluate(`fromJSON(needs.plan.outputs.matrices)[${plan.plan.length}]`, outputs)).toBeNull();
});

test('the parser does reject a malformed matrix (the check above can fail)', () => {
  expect(workflowErrors({ include: 'not a list' }).length).toBeGreaterThan(0);
});

test.each([
  [11, 'rings'],
  [600, '1,5%,25%,100%'],
])(
  '%i targets (%s): wave-1-first and wave-1 deploy wave 1 between them, each target once, as the workflow reads them',
  (n, waves) => {
    const plan = planDeployment(fleet(n), { waves });
    const perWave = matrices(plan);
    const outputs = { matrices: JSON.stringify(perWave), 'wave-1-rest': waveOneRest(perWave) };
    const first = evaluate('fromJSON(needs.plan.outputs.matrices)[0].include[0].targets', outputs) as string;
    const runs = evaluate("needs.plan.outputs['wave-1-rest'] != ''", outputs);
    const rest = runs
      ? (evaluate("fromJSON(needs.plan.outputs['wave-1-rest'])", outputs) as {
          include: Array<{ targets: string }>;
        })
      : { include: [] };
    if (runs) expect(workflowErrors(rest)).toEqual([]);
    const deployed = [first, ...rest.include.map((j) => j.targets)].flatMap((t) => t.split(' '));
    expect(deployed).toEqual(plan.plan[0]!.targets.map((t) => t.id));
    // A wave 1 of one job (the canary "1"): nothing is left, and wave-1's `if` keeps the matrix from running.
    expect(runs).toBe(plan.plan[0]!.jobs.length > 1);
  },
);
