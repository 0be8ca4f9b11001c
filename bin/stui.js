#!/usr/bin/env node
// Runs the compiled CLI (`npm run build`, done by `npm install` through `prepare`).
import { main } from "../dist/src/cli/main.js";

process.exitCode = await main(process.argv.slice(2));
