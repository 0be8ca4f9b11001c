/**
 * The NATS users exactly as docs/security.md documents them: each ```conf block whose first line
 * is `# stui: <label>`, with a fresh password, and a nats-server config that has those users. A
 * missing, doubled or incomplete block throws, so editing the doc cannot make a test pass silently.
 * Also the edits a test makes to a block (an optional entry switched on, one entry left out) and
 * what proves a block sufficient (no permission violation over a run).
 */
import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { REPO_ROOT, type ProcessHandle } from "./processes.js";

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

/**
 * `user` with the optional allow entry `entry` switched on: the doc writes such an entry commented
 * out, `# "<entry>"`, on a line of its own. Throws unless there is exactly one such line.
 */
export function withOptionalEntry(user: DocumentedUser, entry: string): DocumentedUser {
  const line = new RegExp(`^(\\s*)# ("${escapeRegExp(entry)}")\\s*$`, "gm");
  const found = user.block.match(line)?.length ?? 0;
  if (found !== 1) throw new Error(`${user.user}: expected one optional line # "${entry}", found ${found}`);
  return { ...user, block: user.block.replace(line, "$1$2") };
}

/**
 * `user` without the allow entry `entry` of its `publish` or `subscribe` list, as if that line had
 * never been written: what a test of the block's minimality starts from. The entry must stand alone
 * on its line, exactly once in that list.
 */
export function withoutEntry(user: DocumentedUser, list: "publish" | "subscribe", entry: string): DocumentedUser {
  const split = user.block.search(/^\s*subscribe:\s*\{/m);
  if (split < 0) throw new Error(`${user.user}: no subscribe list`);
  const parts = { publish: user.block.slice(0, split), subscribe: user.block.slice(split) };
  const line = new RegExp(`^\\s*"${escapeRegExp(entry)}",?\\s*\\n`, "gm");
  const found = parts[list].match(line)?.length ?? 0;
  if (found !== 1) throw new Error(`${user.user}: expected one line "${entry}" in ${list}, found ${found}`);
  const edited = { ...parts, [list]: parts[list].replace(line, "") };
  return { ...user, block: edited.publish + edited.subscribe };
}

/**
 * Every sign that the server refused `user` something over a run: the lines of the processes'
 * output that name a `Permissions Violation`, then the lines of the nats-server's log that name a
 * violation by that user. Empty: the block was sufficient.
 */
export function permissionViolations(
  user: string,
  server: ProcessHandle,
  processes: readonly ProcessHandle[],
): string[] {
  const own = processes.flatMap((p) =>
    `${p.stdout()}${p.stderr()}`.split("\n").filter((line) => /Permissions? Violation/i.test(line)),
  );
  const logged = server
    .stderr()
    .split("\n")
    .filter((line) => /Violation/.test(line) && line.includes(`User "${user}"`));
  return [...own, ...logged];
}

const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
