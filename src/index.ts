/**
 * The bundle's entry (dist/index.js). It only exports; the stubs in dist/ call into it:
 * dist/cli.js (the `fleet-deploy` bin) → runCli, dist/actions/NAME.js (action.yml `main`) → runAction.
 */
export { runCli } from './cli/main';
export { runAction } from './actions/main';
export { parseRegistry, registryJsonSchema } from './registry';
export { planDeployment, matrices, planJson } from './plan/plan';
export { syntheticRegistry } from './sandbox/synthetic';
