/**
 * The client commands that work in sessions: `stui session create | close`, `stui eval`,
 * `stui context`.
 */
import { dash, EXIT, required, runClientCommand, show, str, UsageError } from "./client-run.js";
import { runGroup } from "./group.js";

const create = (argv: string[]): Promise<number> =>
  runClientCommand(argv, {
    usage:
      "usage: stui session create --image ID --client C [--name N] [--description D] [--json]\n\n" +
      "Opens a session for a client on an image; prints its id.",
    options: {
      image: { type: "string" },
      client: { type: "string" },
      name: { type: "string" },
      description: { type: "string" },
    },
    run: async ({ client, values, json }) =>
      show(
        await client.createSession({
          image_id: required(values, "image"),
          client_id: required(values, "client"),
          session_name: str(values, "name") ?? null,
          description: str(values, "description") ?? null,
        }),
        json,
        ({ session: s }) =>
          `${s.session_id}  created on ${s.image_id} for ${s.client_id}${s.session_name === null ? "" : ` (${s.session_name})`}`,
      ),
  });

const close = (argv: string[]): Promise<number> =>
  runClientCommand(argv, {
    usage:
      "usage: stui session close --session ID [--delete] [--json]\n\n" +
      "Closes a session; its record is kept (closed) unless --delete.",
    options: { session: { type: "string" }, delete: { type: "boolean", default: false } },
    run: async ({ client, values, json }) =>
      show(
        await client.closeSession({ session_id: required(values, "session"), save_state: values["delete"] !== true }),
        json,
        (r) => `${r.session_id}  closed${r.saved ? " (record kept)" : " and deleted"}`,
      ),
  });

export const session = (argv: string[]): Promise<number> =>
  runGroup(argv, "session", {
    create: { summary: "open a session: --image ID --client C [--name N] [--description D]", run: create },
    close: { summary: "close a session: --session ID [--delete]", run: close },
  });

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks).toString("utf8");
}

export const evaluate = (argv: string[]): Promise<number> =>
  runClientCommand(argv, {
    usage:
      "usage: stui eval --client C [--image ID] [--json] CODE...\n" +
      "       stui eval --client C [--image ID] [--json] -      (the code from stdin)\n\n" +
      "Evaluates Smalltalk code on the image named, or the client's current image; prints the result.\n" +
      "Exit 1 when the image reports an error in the code.",
    options: { client: { type: "string" }, image: { type: "string" } },
    positionals: true,
    run: async ({ client, values, positionals, json }) => {
      const clientId = required(values, "client");
      const code = positionals.length === 1 && positionals[0] === "-" ? await readStdin() : positionals.join(" ");
      if (code.trim() === "") throw new UsageError("no code to evaluate (give CODE, or - to read it from stdin)");
      const answer = await client.evaluate({ client_id: clientId, image_id: str(values, "image") ?? null, code });
      if (answer.type === "EvaluationResult" && answer.has_error) {
        if (json) console.log(JSON.stringify(answer, null, 2));
        else console.error(`stui: ${answer.image_id}: the code failed: ${answer.result.split("\n")[0] ?? ""}`);
        return EXIT.answeredError;
      }
      return show(answer, json, (r) => r.result);
    },
  });

/** The client's current image context, as `Evaluate` without `--image` would use it. */
export const context = (argv: string[]): Promise<number> =>
  runClientCommand(argv, {
    usage: "usage: stui context --client C [--json]\n\nThe client's current image context.",
    options: { client: { type: "string" } },
    run: async ({ client, values, json }) => {
      const answer = await client.getClientContext({ client_id: required(values, "client") });
      return show(answer, json, (c) => `${c.client_id}: ${dash(c.image_id ?? "(none)")}`);
    },
  });
