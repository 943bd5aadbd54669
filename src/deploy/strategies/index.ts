/** The release strategy of a target, from its registry entry. */
import type { Target } from '../../registry/model';
import type { ReleaseStrategy } from '../strategy';
import { CommandsStrategy } from './commands';
import { ComposeStrategy } from './compose';

export function strategyFor(target: Target): ReleaseStrategy {
  const commands = target.tenant.commands;
  return commands ? new CommandsStrategy(target, commands) : new ComposeStrategy(target);
}
