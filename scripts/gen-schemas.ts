/** Writes docs/schemas/ from the protocol's zod schemas (`npm run schemas`). */
import { mkdir, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { generateJsonSchemas, schemaText } from "../src/protocol/json-schema.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "docs", "schemas");
await rm(root, { recursive: true, force: true });
const schemas = generateJsonSchemas();
for (const [path, schema] of schemas) {
  const target = join(root, path);
  await mkdir(dirname(target), { recursive: true });
  await writeFile(target, schemaText(schema));
}
console.log(`wrote ${schemas.size} schemas to ${root}`);
