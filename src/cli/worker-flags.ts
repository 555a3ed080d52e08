/**
 * The V8 and Node flags of the confined worker, in one place: the parent starts the worker with them,
 * and the build (scripts/bundle-cli.mjs) trains the worker's code cache with the same V8 flags, since
 * V8 rejects a code cache made under different ones.
 */

/** V8 flags (they are part of the code cache's validity check). */
export const WORKER_V8_FLAGS: readonly string[] = [
  '--max-old-space-size=256',
  // Small young generation: the copy loop allocates little, and this keeps the peak RSS flat.
  '--max-semi-space-size=2',
  '--disable-proto=delete',
  '--enable-experimental-regexp-engine-on-excessive-backtracks',
];

/**
 * Every flag of the worker's command line that does not depend on where the package is or on the
 * run: the build writes them to dist/cli/worker.flags, one per line, for bin/tsgrub, which starts the
 * worker before the parent exists (and adds the package root, /proc/self/limits and the image).
 */
export const WORKER_FIXED_FLAGS: readonly string[] = ['--experimental-permission', ...WORKER_V8_FLAGS, '--no-warnings'];

/** Node's permission model: read only the package's own code (and /proc/self/limits, for --debug). */
export function workerPermissionFlags(packageRoot: string): string[] {
  return [
    '--experimental-permission',
    `--allow-fs-read=${packageRoot}`,
    // Only so the worker can report its own rlimits (--debug, isolation tests).
    '--allow-fs-read=/proc/self/limits',
  ];
}
