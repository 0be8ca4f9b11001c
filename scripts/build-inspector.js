#!/usr/bin/env node
// Builds the inspector page into ONE self-contained file, dist/inspector/index.html: the script
// (bundled by esbuild, elkjs included) and the stylesheet are inlined, because the bridge serves
// just that file and the page must make no other request.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build, transform } from "esbuild";

const root = fileURLToPath(new URL("..", import.meta.url));
const source = `${root}inspector`;
const outDir = `${root}dist/inspector`;

const script = await build({
  entryPoints: [`${source}/src/main.ts`],
  bundle: true,
  write: false,
  format: "iife",
  platform: "browser",
  target: "es2022",
  minify: true,
  legalComments: "none",
  tsconfig: `${source}/tsconfig.json`,
  logLevel: "warning",
});
const style = await transform(readFileSync(`${source}/style.css`, "utf8"), { loader: "css", minify: true });

// Inline text must not close its element early.
const js = (script.outputFiles[0]?.text ?? "").replace(/<\/(script)/gi, "<\\/$1");
const css = style.code.replace(/<\/(style)/gi, "<\\/$1");
const html = readFileSync(`${source}/index.html`, "utf8")
  .replace("/* INSPECTOR_STYLE */", () => css)
  .replace("/* INSPECTOR_SCRIPT */", () => js);

mkdirSync(outDir, { recursive: true });
writeFileSync(`${outDir}/index.html`, html);
console.log(`inspector: dist/inspector/index.html (${Math.round(html.length / 1024)} KiB)`);
