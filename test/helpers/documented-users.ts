/**
 * The NATS users exactly as docs/security.md documents them: each ```conf block whose first line
 * is `# stui: <label>`, with a fresh password, and a nats-server config that has those users. A
 * missing, doubled or incomplete block throws, so editing the doc cannot make a test pass silently.
 */
import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { REPO_ROOT } from "./processes.js";

export interface DocumentedUser {
  readonly user: string;
  readonly pass: string;
  /** The `{ user: …, password: …, permissions: {…} }` entry, with `pass` as its password. */
  readonly block: string;
}

const FENCE = /^```conf\n([\s\S]*?)^```$/gm;

/** The block labelled `label` in `markdown`, as written; throws when it is not exactly one complete block. */
export function documentedBlock(markdown: string, label: string): { readonly block: string; readonly user: string } {
  const blocks = [...markdown.matchAll(FENCE)]
    .map((m) => m[1] ?? "")
    .filter((body) => body.split("\n", 1)[0]?.trim() === `# stui: ${label}`);
  if (blocks.length !== 1) {
    throw new Error(
      `docs/security.md: expected one \`\`\`conf block starting with "# stui: ${label}", found ${blocks.length}`,
    );
  }
  const block = blocks[0] ?? "";
  const user = /^\s*user:\s*"([^"]+)"/m.exec(block)?.[1];
  if (user === undefined) throw new Error(`docs/security.md, ${label}: no \`user: "…"\` line`);
  if ((block.match(/^\s*password:\s*"[^"]*"/gm) ?? []).length !== 1) {
    throw new Error(`docs/security.md, ${label}: expected one \`password: "…"\` line`);
  }
  if (!/^\s*permissions:\s*\{/m.test(block)) throw new Error(`docs/security.md, ${label}: no permissions`);
  return { block, user };
}

/** The block labelled `label` in docs/security.md, with a fresh password. */
export async function documentedUser(label: string): Promise<DocumentedUser> {
  const markdown = await readFile(path.join(REPO_ROOT, "docs", "security.md"), "utf8");
  const { block, user } = documentedBlock(markdown, label);
  // Hex: safe in a nats-server config string and in a URL's userinfo.
  const pass = randomBytes(12).toString("hex");
  return { user, pass, block: block.replace(/^(\s*password:\s*)"[^"]*"/m, `$1"${pass}"`) };
}

/** Writes `<dir>/nats.conf`: JetStream in `<dir>/jetstream` and exactly these users. */
export async function natsConfigWithUsers(dir: string, users: readonly { readonly block: string }[]): Promise<string> {
  const file = path.join(dir, "nats.conf");
  const lines = [
    `jetstream { store_dir: "${path.join(dir, "jetstream")}" }`,
    "authorization {",
    "  users = [",
    ...users.map((u) => u.block),
    "  ]",
    "}",
    "",
  ];
  await writeFile(file, lines.join("\n"));
  return file;
}
