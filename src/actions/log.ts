/**
 * The log of every action: @actions/core, with everything it writes to the log made safe first. Actions
 * print server text (remote stderr, hook output, lock owners, history fields); the runner would run a
 * line of it that starts with "::" as a workflow command, and a terminal reading the raw log would obey
 * its escape sequences. So the actions import `core` from here, not from '@actions/core', and every
 * message (info, debug, notice, warning, error, setFailed, group names, annotation titles) passes through
 * report/sanitize at this one sink; inputs, outputs, state and the summary pass through unchanged (the
 * summary's Markdown is made safe where it is built, in report/summary).
 */
import * as actions from '@actions/core';
import { sanitize, sanitizeLine } from '../report/sanitize';

const message = (m: string | Error): string => sanitize(m instanceof Error ? m.message : m);
const annotation = (p?: actions.AnnotationProperties): actions.AnnotationProperties | undefined =>
  p && { ...p, ...(p.title !== undefined ? { title: sanitizeLine(p.title) } : {}) };

export const core: typeof actions = {
  ...actions,
  info: (m) => actions.info(sanitize(m)),
  debug: (m) => actions.debug(sanitize(m)),
  notice: (m, p) => actions.notice(message(m), annotation(p)),
  warning: (m, p) => actions.warning(message(m), annotation(p)),
  error: (m, p) => actions.error(message(m), annotation(p)),
  setFailed: (m) => actions.setFailed(message(m)),
  startGroup: (name) => actions.startGroup(sanitizeLine(name)),
  group: (name, fn) => actions.group(sanitizeLine(name), fn),
};
