import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { generateJsonSchemas, schemaText } from "../src/protocol/json-schema.js";

const root = join(import.meta.dirname, "..", "docs", "schemas");

function committedFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? committedFiles(join(dir, entry.name)) : [relative(root, join(dir, entry.name))],
  );
}

describe("protocol schemas - docs/schemas/ matches the code", () => {
  const generated = generateJsonSchemas();

  it("has exactly the files the code generates (run `npm run schemas` after changing src/protocol)", () => {
    expect(committedFiles(root).sort()).toEqual([...generated.keys()].sort());
  });

  it.each([...generated.entries()])("%s is up to date", (path, schema) => {
    expect(readFileSync(join(root, path), "utf8")).toBe(schemaText(schema));
  });
});
