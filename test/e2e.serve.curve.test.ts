/**
 * End to end: `stui serve` with CURVE image links, key files written by `stui keygen`, two
 * CURVE `stui image-sim` processes and a real nats-server. The image that lets this service's key
 * in is Connected and answers; the one that does not is `Failed` with `AuthFailed`, in the answers
 * and the status event. No secret key is in the service's output, an answer, an event or an
 * inspector's view. A key file readable by others stops the start with what to do.
 */
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { connect } from "@nats-io/transport-node";
import { afterEach, describe, expect, it } from "vitest";
import { StuiClient } from "../src/client.js";
import type { CurveKeyPair } from "../src/curve.js";
import { inspectSubjects } from "../src/protocol/inspect.js";
import type { StuiEvent } from "../src/protocol/index.js";
import { isolatedEnv, runStui } from "./helpers/cli.js";
import { startImageSim } from "./helpers/image-sim.js";
import { startNatsServer, type NatsServerHandle } from "./helpers/nats-server.js";
import { spawnStui, stopAllProcesses } from "./helpers/processes.js";

let nats: NatsServerHandle | null = null;
let dir = "";
afterEach(async () => {
  await stopAllProcesses();
  await nats?.stop();
  nats = null;
  if (dir !== "") await rm(dir, { recursive: true, force: true });
});

/** `stui keygen --out FILE`: the pair it wrote. */
async function keygen(file: string): Promise<CurveKeyPair> {
  const made = await runStui(["keygen", "--out", file]);
  expect(made.code).toBe(0);
  return JSON.parse(await readFile(file, "utf8")) as CurveKeyPair;
}

describe("stui serve - CURVE image links", () => {
  it("connects the image that lets its key in, fails the other with AuthFailed, and shows no secret anywhere", async () => {
    dir = await mkdtemp(path.join(tmpdir(), "stui-serve-curve-"));
    const image = await keygen(path.join(dir, "image.json"));
    const service = await keygen(path.join(dir, "service.json"));
    const stranger = await keygen(path.join(dir, "stranger.json"));
    const open = await startImageSim({
      name: "open",
      extraArgs: ["--curve-secret-key", path.join(dir, "image.json"), `--curve-client-key=${service.public_key}`],
    });
    const closed = await startImageSim({
      name: "closed",
      extraArgs: ["--curve-secret-key", path.join(dir, "image.json"), `--curve-client-key=${stranger.public_key}`],
    });
    nats = await startNatsServer();
    const config = path.join(dir, "stui.json");
    // The key file is named relative to the configuration file.
    const curve = { server_public_key: image.public_key, client_key_file: "service.json" };
    await writeFile(
      config,
      JSON.stringify({
        instance_id: "secure",
        nats: { url: nats.url },
        store: { path: path.join(dir, "store") },
        images: [
          { id: "open", address: open.endpoint, curve },
          { id: "closed", address: closed.endpoint, curve },
        ],
      }),
    );
    const client = await StuiClient.connect({ servers: nats.url, timeoutMs: 10_000 });
    const events: StuiEvent[] = [];
    const nc = await connect({ servers: nats.url });
    try {
      void (async () => {
        for await (const event of client.events({ subject: "stui.events.image.*.status" })) events.push(event);
      })().catch(() => undefined);
      const serve = spawnStui(["serve", "--config", config], { env: isolatedEnv({ STUI_LOG_LEVEL: "debug" }) });
      await serve.waitForLine(/"stui serve: listening"/, { timeoutMs: 30_000 });
      await expect
        .poll(
          async () => {
            const r = await client.listImages();
            return r.type === "Images" ? r.images.map((i) => `${i.image_id} ${i.status} ${i.failure}`) : [];
          },
          { timeout: 15_000 },
        )
        .toEqual(["open Connected null", "closed Failed AuthFailed"]);
      const evaluated = await client.evaluate({ client_id: "c", image_id: "open", code: "3 + 4" });
      expect(evaluated).toMatchObject({ type: "EvaluationResult", result: "7" });
      const closedStatus = await client.getImageConnectionStatus({ image_id: "closed" });
      expect(closedStatus).toMatchObject({ status: "Failed", failure: "AuthFailed" });
      await expect
        .poll(() => events.find((e) => e.subject === "closed" && e.type === "io.stui.image.status.changed")?.data)
        .toMatchObject({ status: "Failed", failure: "AuthFailed" });
      const attach = await nc.request(
        inspectSubjects.attach("secure"),
        JSON.stringify({ inspector_id: "t", lease_ms: 5000 }),
        { timeout: 5000 },
      );
      const seen = [
        attach.string(),
        JSON.stringify(closedStatus),
        JSON.stringify(await client.listImages()),
        JSON.stringify(events),
      ];
      // The inspector sees that the links are secured, and by which public keys.
      expect(seen[0]).toContain(image.public_key);
      await serve.stop();
      seen.push(serve.stdout(), serve.stderr());
      for (const text of seen) {
        expect(text).not.toContain(service.secret_key);
        expect(text).not.toContain(image.secret_key);
      }
      expect(serve.stdout()).toContain("AuthFailed: the image refused this service's CURVE key (ZAP status 400)");
    } finally {
      await nc.close();
      await client.close();
    }
  });

  it("refuses to start with a key file others may read, naming it and what to do", async () => {
    dir = await mkdtemp(path.join(tmpdir(), "stui-serve-curve-"));
    const image = await keygen(path.join(dir, "image.json"));
    const keyFile = path.join(dir, "service.json");
    await keygen(keyFile);
    await chmod(keyFile, 0o640);
    const config = path.join(dir, "stui.yaml");
    await writeFile(
      config,
      [
        "images:",
        "  - id: dev",
        "    address: tcp://127.0.0.1:5555",
        "    curve:",
        `      server_public_key: "${image.public_key}"`,
        "      client_key_file: service.json",
        "  - id: typo",
        "    address: tcp://127.0.0.1:5556",
        "    curve: { server_public_key: not-a-key, client_key_file: service.json }",
      ].join("\n"),
    );
    const bad = await runStui(["serve", "--config", config], { env: isolatedEnv() });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(
      `stui serve: ${config}: images[1].curve.server_public_key: expected a CURVE key: 40 characters of Z85`,
    );
    await writeFile(config, (await readFile(config, "utf8")).split("\n").slice(0, 6).join("\n"));
    const loose = await runStui(["serve", "--config", config], { env: isolatedEnv() });
    expect(loose.code).toBe(2);
    expect(loose.stderr).toContain(
      `stui serve: images[0] (dev).curve.client_key_file: key file ${keyFile} has mode 0640: ` +
        `others than its owner may read it; refused (chmod 600 ${keyFile})`,
    );
  });
});
