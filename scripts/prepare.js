#!/usr/bin/env node
// `prepare` (run by `npm ci` / `npm install` in a checkout): builds dist/ (the service, then the
// inspector page) when TypeScript is installed; without it (an install with --omit=dev) an already built dist/ is kept, and with
// neither it says so in one line and fails. `npm pack` builds through `prepack` instead, so this
// does nothing then.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
if (process.env["npm_command"] === "pack" || process.env["npm_command"] === "publish") process.exit(0);

let tsc = null;
try {
  tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
} catch {
  // a production install: no dev dependencies
}
if (tsc !== null) {
  const build = spawnSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], { cwd: root, stdio: "inherit" });
  if (build.status !== 0) process.exit(build.status ?? 1);
  // esbuild is a dev dependency like TypeScript, so the page is built whenever the service is.
  const page = spawnSync(process.execPath, ["scripts/build-inspector.js"], { cwd: root, stdio: "inherit" });
  process.exit(page.status ?? 1);
}
if (existsSync(new URL("../dist/src/cli/main.js", import.meta.url))) process.exit(0);
console.error(
  "stui: dist/ is not built and TypeScript is not installed: run `npm ci` with dev dependencies, " +
    "or install the packed tarball (docs/operations.md)",
);
process.exit(1);
