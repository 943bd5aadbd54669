/**
 * The exit codes of the deploy's verbs (prepare, pull, update) that deploy/ tells apart, in one table so
 * none of them collides. Other scripts keep their own beside them: private-dir.ts's PRIVATE_DIR_REFUSED
 * (31, inside update's switch), backup.ts's RESTORE_EXIT, blue-green.ts's PROXY_DOWN.
 */

/** Exit codes of preflight's checks, so each failure gets its own message. */
export const PREFLIGHT = {
  noDirectory: 10,
  noComposeFile: 11,
  noComposeCommand: 12,
  noEnvFile: 13,
  envIsLink: 14,
  /** The lock's owner file could not be written (a full disk): the half-made lock is removed. */
  lockUnwritable: 15,
} as const;

/** Exit code of `prepare` when another deploy holds the lock. */
export const LOCK_HELD = 20;
/** Exit code of `update` when .env could not be switched (so nothing changed). */
export const SWITCH_FAILED = 30;

/** Exit code of `pull` when a registry refused the login (so the pull is not tried again). */
export const LOGIN_FAILED = 40;
