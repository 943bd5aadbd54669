/** The release strategy of a target, from its registry entry: one case per kind of `Strategy`. */
import type { Target } from '../../registry/model';
import type { ReleaseStrategy } from '../strategy';
import { BlueGreenStrategy } from './blue-green';
import { CommandsStrategy } from './commands';
import { ComposeStrategy } from './compose';

export function strategyFor(target: Target): ReleaseStrategy {
  const strategy = target.tenant.strategy;
  switch (strategy.kind) {
    case 'in-place':
      return new ComposeStrategy(target);
    case 'commands':
      return new CommandsStrategy(target, strategy);
    case 'blue-green':
      return new BlueGreenStrategy(target, strategy);
    default:
      return unknownKind(strategy);
  }
}

/** Reached only by a kind without a case above: then `strategy` is not `never` and this does not compile. */
function unknownKind(strategy: never): never {
  throw new Error(`no release strategy for ${JSON.stringify(strategy)}`);
}
