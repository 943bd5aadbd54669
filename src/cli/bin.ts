/**
 * The `fleet-deploy` command: dist/cli.bundle.js, a bundle of its own, which dist/cli.js runs from a code
 * cache (code-cache.ts). It holds the CLI and the engine but none of the actions' packages (@actions/*,
 * Octokit, undici), which the actions' bundle (dist/index.js) carries: a command starts on a little over
 * half the CPU it took as one bundle with the actions.
 */
import { runCli } from './main';

void runCli(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
