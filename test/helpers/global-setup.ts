/**
 * Builds `dist/` once before any test, so integration tests that run `node bin/stui.js` run the
 * code under test rather than a stale build. Incremental (its build info lives inside `dist/`, so
 * deleting `dist/` forces a full build): an unchanged tree costs about a second.
 */
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../..", import.meta.url));

export default function setup(): void {
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
  const args = [tsc, "-p", "tsconfig.build.json", "--incremental", "--tsBuildInfoFile", "dist/.tsbuildinfo"];
  const build = spawnSync(process.execPath, args, { cwd: root, encoding: "utf8" });
  const output = `${build.stdout}${build.stderr}`.trim();
  // Status 2 is "type errors, output written": `npm run typecheck` reports those; the tests can
  // still run. Anything else means `dist/` was not written, and every process test would mislead.
  if (build.status === 2) {
    console.warn(`global setup: the build has type errors (dist/ was still written):\n${output}`);
  } else if (build.status !== 0) {
    throw new Error(`global setup: tsc -p tsconfig.build.json failed (${build.status ?? build.signal}):\n${output}`);
  }
}
