/**
 * The actions' bundle (dist/index.js). It only exports: dist/actions/NAME.js (action.yml `main`) calls
 * runAction, the build reads the registry's JSON Schema. The command is a bundle of its own (cli/bin.ts).
 */
export { runAction } from './actions/main';
export { parseRegistry, registryJsonSchema } from './registry';
export { planDeployment, matrices, planJson } from './plan/plan';
export { syntheticRegistry } from './sandbox/synthetic';
