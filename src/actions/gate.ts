/**
 * The gate between waves of the reusable workflow: reads the finished waves' reports, applies the failure
 * budget, the registry's analysis (`rollout.analysis`, measured here through the wave's soak: the same
 * engine as fleet mode) and, optionally, a simple analysis check (an HTTP endpoint whose 2xx answer means
 * go on, or a command whose exit code 0 does), and says whether the next wave may start — or, for an
 * inconclusive analysis under the "pause" policy, that a person must approve it (output `pause`).
 */
import { execFile } from 'node:child_process';
import { core } from './log';
import { decideGate } from '../deploy/budget';
import { fetchUrl } from '../http/fetch';
import { latestResults } from '../report/summary';
import { setting, SETTINGS } from '../settings';
import { actionInputs } from './inputs';
import { readReports } from './reports';
import { analyseInGate } from './gate-analysis';
import { analysisMarkdown } from '../report/analysis';

export async function runWaveGate(): Promise<void> {
  const dir = setting(actionInputs, 'reports')!;
  // After a re-run of failed jobs the artifacts hold every attempt's reports, and reports of later waves an
  // earlier attempt got to: judge only each target's newest result, and only waves up to this one.
  const wave = setting(actionInputs, 'wave');
  const reports = latestResults(await readReports(dir, actionInputs.name(SETTINGS.reports)), wave);
  const maxFailures = setting(actionInputs, 'maxFailures');
  let decision = decideGate(
    reports,
    {
      maxFailurePercent: setting(actionInputs, 'maxFailurePercent')!,
      ...(maxFailures !== undefined ? { maxFailures } : {}),
    },
    setting(actionInputs, 'expectedTargets'),
  );
  let pause = false;
  if (decision.proceed && wave !== undefined) {
    const gated = await analyseInGate(wave, reports);
    if (gated) {
      const a = gated.analysis;
      pause = a.decision === 'pause';
      const said = `analysis after wave ${a.wave} ${a.outcome}: ${a.reason}${gated.rolledBack ? `; ${gated.rolledBack}` : ''}`;
      decision = { ...decision, proceed: a.decision === 'proceed', reason: `${decision.reason}; ${said}` };
      await core.summary.addRaw(analysisMarkdown(a, gated.rolledBack), true).write();
    }
  }
  const url = setting(actionInputs, 'analysisUrl');
  const command = setting(actionInputs, 'analysisCommand');
  if (decision.proceed && url) {
    try {
      const r = await fetchUrl(url, 30_000);
      if (r.status < 200 || r.status > 299)
        decision = {
          ...decision,
          proceed: false,
          reason: `analysis ${url} answered HTTP ${r.status}: ${r.body.slice(0, 200)}`,
        };
      else
        decision = { ...decision, reason: `${decision.reason}; analysis ${url} answered HTTP ${r.status}` };
    } catch (e) {
      decision = {
        ...decision,
        proceed: false,
        reason: `analysis ${url} did not answer: ${(e as Error).message}`,
      };
    }
  }
  if (decision.proceed && command) {
    const result = await new Promise<{ code: number; out: string }>((resolve) =>
      execFile('sh', ['-c', command], { timeout: 300_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) =>
        resolve({
          code: err ? ((err as NodeJS.ErrnoException & { code?: number }).code as unknown as number) || 1 : 0,
          out: `${stdout}${stderr}`.trim(),
        }),
      ),
    );
    if (result.code !== 0)
      decision = {
        ...decision,
        proceed: false,
        reason: `analysis command exited ${result.code}: ${result.out.slice(-300)}`,
      };
    else decision = { ...decision, reason: `${decision.reason}; analysis command passed` };
  }
  core.setOutput('continue', String(decision.proceed));
  core.setOutput('pause', String(pause));
  core.setOutput('reason', decision.reason);
  core.setOutput('failures', String(decision.failures));
  if (decision.proceed) core.info(`Next wave may start: ${decision.reason}`);
  else if (pause)
    core.warning(`Rollout paused for approval: ${decision.reason}`, { title: 'fleet-deploy gate' });
  else core.warning(`Rollout stopped: ${decision.reason}`, { title: 'fleet-deploy gate' });
}
