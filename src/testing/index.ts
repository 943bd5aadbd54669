/**
 * The local fleet fixture: what tests, the benchmarks and the sandbox use to stand up servers and tenants
 * on this machine. The pieces the shipped sandbox needs at run time live in src/sandbox/; the OpenSSH
 * servers and the deploy user (tests and benchmarks only, never bundled) here.
 */
export { freePort } from '../sandbox/ports';
export { isRunning, stopProcesses } from '../sandbox/processes';
export { servicePids, stopServices } from '../sandbox/services';
export {
  TENANT_COMPOSE,
  tenantDefaults,
  writeDockerShim,
  writeTenantDir,
  type TenantFiles,
} from '../sandbox/tenants';
export { asDeployUser, DEPLOY_USER, ensureDeployUser, handOver } from './deploy-user';
export {
  descendants,
  haveSshd,
  makeKeyPair,
  sandboxRuntimeEnv,
  SSHD,
  sshdConfig,
  startOpenSsh,
  type KeyPair,
  type OpenSsh,
  type SshdOptions,
} from './openssh';
