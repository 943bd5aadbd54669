/** The release strategy of a target, from its registry entry. */
import type { Target } from '../../registry/model';
import type { ReleaseStrategy } from '../strategy';
import { BlueGreenStrategy } from './blue-green';
import { CommandsStrategy } from './commands';
import { ComposeStrategy } from './compose';

export function strategyFor(target: Target): ReleaseStrategy {
  const { commands, blueGreen } = target.tenant;
  if (commands) return new CommandsStrategy(target, commands);
  return blueGreen ? new BlueGreenStrategy(target, blueGreen) : new ComposeStrategy(target);
}
