/**
 * The tenant directory as every remote script sees it: the tool's own files in it, entering it, and
 * keeping the lock fresh on each round trip of a deploy.
 */
import type { Tenant } from '../registry/model';
import { sh } from './shell';

/** The tool's own files in a tenant directory. */
export const STATE_DIR = '.fleet';
export const LOCK_DIR = `${STATE_DIR}/lock`;
export const HISTORY_FILE = `${STATE_DIR}/history.jsonl`;
export const BACKUP_DIR = `${STATE_DIR}/backups`;

export const enter = (t: Tenant) => sh`cd -- ${t.path}`;

/**
 * Keeps the lock's age (its directory's mtime) fresh: every round trip of a deploy after `prepare`
 * starts with it, so only a lock no deploy is working under grows old (src/deploy/locks.ts). `-c`: a
 * lock that is gone stays gone.
 */
export const touchLock = sh`{ touch -c -- ${LOCK_DIR} 2>/dev/null || :; }`;
/** The same from the login directory, for a script that does not enter the tenant's (the path may be relative to it). */
export const touchLockFromHome = (t: Tenant) =>
  sh`{ touch -c -- ${`${t.path}/${LOCK_DIR}`} 2>/dev/null || :; }`;
