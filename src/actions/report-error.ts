/**
 * Turns an error into what GitHub shows: a configuration error becomes one annotation per problem, on the
 * registry file's line when it has one; any other error a failure with its message. Then fails the step.
 */
import { core } from './log';
import { formatPath, isConfigurationError } from '../errors';

export function failStep(error: unknown): void {
  if (isConfigurationError(error)) {
    for (const p of error.problems) {
      const text = `${p.path.length ? `${formatPath(p.path)}: ` : ''}${p.message}${p.hint ? ` (${p.hint})` : ''}`;
      if (p.line && p.source) {
        core.error(text, {
          title: 'fleet-deploy: invalid registry',
          file: p.source,
          startLine: p.line,
          startColumn: p.column,
        });
      } else {
        core.error(p.source ? `${p.source}: ${text}` : text, { title: 'fleet-deploy: configuration error' });
      }
    }
    const n = error.problems.length;
    core.setFailed(
      `configuration error: ${n === 1 ? 'see the annotation above' : `${n} problems, see the annotations above`}`,
    );
    return;
  }
  const e = error as Error;
  core.setFailed(e?.message ?? String(error));
  if (e?.stack) core.debug(e.stack);
}
