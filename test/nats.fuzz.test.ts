/**
 * Malformed requests over a real nats-server: thousands of junk bodies, generated with fast-check,
 * sent to every endpoint and to the tagged envelope endpoint. Each must be answered with a
 * decodable protocol response (`Error` / `InvalidRequest` for the malformed ones, naming what was
 * wrong), and the service must keep serving and log no failure to answer.
 *
 * A failing run prints its seed; `STUI_FUZZ_SEED=<seed>` replays exactly the same bodies.
 */
import { randomInt } from "node:crypto";
import { ServiceErrorCodeHeader } from "@nats-io/services";
import type { Msg } from "@nats-io/transport-node";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { z } from "zod";
import { SERVICE_ERROR_CODES } from "../src/actors/nats-api.js";
import {
  API_PREFIX,
  API_REQUEST_SUBJECT,
  apiSubject,
  decodeRequest,
  decodeRequestBody,
  decodeResponse,
  endpointName,
  Request,
  REQUEST_TYPES,
  requestTypeOfEndpoint,
  Response,
  type Decoded,
  type RequestType,
  type Response as ResponseValue,
} from "../src/protocol/index.js";
import { arbitraryOf, safeJson } from "./helpers/arbitrary.js";
import { natsServerPerTest } from "./helpers/per-test.js";
import { startService, type ServiceHarness } from "./helpers/service.js";

const nats = natsServerPerTest();

/** How many bodies one run sends; enough that at least 10 000 of them are malformed. */
const CASES = 11_000;
const IN_FLIGHT = 64;
/** A reply normally takes milliseconds; a missing one is a failure, reported with its body. */
const REPLY_TIMEOUT_MS = 5_000;
/** Largest body generated: well under NATS's default max_payload of 1 MiB. */
const MAX_BODY_BYTES = 900_000;

const SUBJECTS = [...REQUEST_TYPES.map(apiSubject), API_REQUEST_SUBJECT];
const FIELD_NAMES = [...new Set(REQUEST_TYPES.flatMap((t) => Object.keys(Request.variants[t].shape)))];
const utf8 = new TextEncoder();

interface Case {
  /** Which generator made it, for the failure report. */
  readonly kind: string;
  readonly subject: string;
  readonly body: Uint8Array;
  /** Built to be refused: it must not decode (a check on the generators themselves). */
  readonly malformed: boolean;
  /** For a valid request with one field spoiled: the path an `InvalidRequest` must name. */
  readonly field?: string;
}

const make = (kind: string, subject: string, body: string | Uint8Array, extra: Partial<Case> = {}): Case => ({
  kind,
  subject,
  body: typeof body === "string" ? utf8.encode(body) : body,
  malformed: false,
  ...extra,
});

/** What the service should make of a body: the same decoding it does, run here. */
function decodeAsService(c: Case): Decoded<Request> {
  if (c.subject === API_REQUEST_SUBJECT) return decodeRequest(c.body);
  const type = requestTypeOfEndpoint(c.subject.slice(API_PREFIX.length + 1));
  if (type === undefined) throw new Error(`no endpoint for ${c.subject}`);
  // An empty body to an endpoint is `{}` (docs/protocol.md).
  return decodeRequestBody(type, c.body.length === 0 ? "{}" : c.body);
}

const anySubject = fc.constantFrom(...SUBJECTS);
const anyType = fc.constantFrom(...REQUEST_TYPES);
const jsonText = (value: unknown): string => JSON.stringify(value) ?? "null";
/** JSON values as they arrive on the wire (fast-check's -0 reads back as 0). */
const jsonValue = fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.parse(jsonText(v)) as unknown);
const validBody = (type: RequestType) => arbitraryOf(Request.variants[type]) as fc.Arbitrary<Record<string, unknown>>;

/** Random bytes: mostly not UTF-8, sometimes text, rarely JSON. */
const randomBytes = fc
  .record({ subject: anySubject, body: fc.uint8Array({ maxLength: 256 }) })
  .map(({ subject, body }) => make("bytes", subject, body));

/** Random text, including control characters, lone surrogates and line breaks. */
const randomText = fc
  .record({
    subject: anySubject,
    body: fc.oneof(fc.string({ maxLength: 200 }), fc.string({ unit: "binary", maxLength: 200 })),
  })
  .map(({ subject, body }) => make("text", subject, body));

/** A valid request's JSON, cut short or with one character inserted or removed. */
const mutatedJson = anyType
  .chain((type) =>
    fc.record({
      type: fc.constant(type),
      fields: validBody(type),
      envelope: fc.boolean(),
      at: fc.nat(),
      how: fc.constantFrom("truncate", "insert", "delete"),
      char: fc.string({ unit: "binary", minLength: 1, maxLength: 1 }),
    }),
  )
  .map(({ type, fields, envelope, at, how, char }) => {
    const text = jsonText(envelope ? { [type]: fields } : fields);
    const i = at % text.length;
    const body =
      how === "truncate"
        ? text.slice(0, i)
        : how === "insert"
          ? text.slice(0, i) + char + text.slice(i)
          : text.slice(0, i) + text.slice(i + 1);
    return make(`mutated JSON (${how})`, envelope ? API_REQUEST_SUBJECT : apiSubject(type), body);
  });

/** Any JSON value at all. */
const randomJson = fc
  .record({ subject: anySubject, value: jsonValue })
  .map(({ subject, value }) => make("JSON value", subject, jsonText(value)));

/** Objects with the protocol's own names as keys (and the forbidden ones), holding junk. */
const nearMissJson = fc
  .record({
    subject: anySubject,
    value: fc.dictionary(
      fc.constantFrom(...REQUEST_TYPES, ...FIELD_NAMES, "__proto__", "constructor", "prototype"),
      fc.oneof(jsonValue, fc.string({ unit: "binary", maxLength: 70 })),
      { maxKeys: 5 },
    ),
  })
  .map(({ subject, value }) => make("near-miss JSON", subject, jsonText(value)));

/** A valid request with one field replaced by junk, or a required field left out. */
const spoiledField = fc
  .constantFrom(...REQUEST_TYPES.filter((t) => Object.keys(Request.variants[t].shape).length > 0))
  .chain((type) => {
    const shape = Request.variants[type].shape as Record<string, z.ZodType>;
    const accepts = (key: string, value: unknown): boolean => shape[key]?.safeParse(value).success !== false;
    return fc
      .record({
        type: fc.constant(type),
        fields: validBody(type),
        key: fc.constantFrom(...Object.keys(shape)),
        junk: fc.oneof(
          safeJson,
          fc.string({ unit: "binary", maxLength: 80 }),
          fc.constantFrom("", " ", "a.b", "a*", ">", "x".repeat(65), -1, 1.5, true, null, [], {}),
        ),
        remove: fc.boolean(),
        envelope: fc.boolean(),
      })
      .filter(({ key, junk, remove }) => !accepts(key, remove ? undefined : junk));
  })
  .map(({ type, fields, key, junk, remove, envelope }) => {
    const spoiled: Record<string, unknown> = { ...fields, [key]: junk };
    if (remove) delete spoiled[key];
    const subject = envelope ? API_REQUEST_SUBJECT : apiSubject(type);
    const body = jsonText(envelope ? { [type]: spoiled } : spoiled);
    return make(remove ? "missing field" : "spoiled field", subject, body, {
      malformed: true,
      field: `${type}.${key}`,
    });
  });

/** Tags a request name is easily mistaken for. */
const mangledTag = anyType.chain((type) =>
  fc.constantFrom(
    type.toLowerCase(),
    type.charAt(0).toLowerCase() + type.slice(1),
    endpointName(type),
    ` ${type}`,
    `${type} `,
    `${type}s`,
    type.toUpperCase(),
    `Request.${type}`,
  ),
);
const unknownTag = fc
  .oneof(mangledTag, fc.constantFrom(...Response.names, "", "type", "Request"), fc.string({ maxLength: 30 }))
  .filter((tag) => !Request.has(tag));
const fieldsOfSome = anyType.chain((type) => validBody(type));

/** Externally tagged envelopes on `stui.api.request` with the tag wrong, doubled, bare or misplaced. */
const wrongEnvelope = fc
  .oneof(
    fc
      .record({ tag: unknownTag, body: fieldsOfSome })
      .map(({ tag, body }) => ({ kind: "unknown tag", value: { [tag]: body } })),
    fc
      .uniqueArray(anyType, { minLength: 2, maxLength: 4 })
      .chain((types) => fc.tuple(...types.map((t) => validBody(t).map((b) => [t, b] as const))))
      .map((entries) => ({ kind: "two tags", value: Object.fromEntries(entries) })),
    fc
      .oneof(unknownTag, fc.constantFrom(...REQUEST_TYPES.filter((t) => !Request.isUnitLike(t))))
      .map((tag) => ({ kind: "bare tag", value: tag })),
    fc
      .record({
        type: anyType,
        body: fc.oneof(
          fc.constant(null),
          fc.integer(),
          fc.string(),
          fc.boolean(),
          fc.array(jsonValue, { maxLength: 3 }),
        ),
      })
      .map(({ type, body }) => ({ kind: "tag without an object", value: { [type]: body } })),
    fc
      .record({ type: anyType, fields: fieldsOfSome })
      .map(({ type, fields }) => ({ kind: "tag in an array", value: [{ [type]: fields }] })),
    fc.record({ type: anyType, fields: fieldsOfSome }).map(({ type, fields }) => ({
      kind: "internally tagged",
      value: { type, ...fields },
    })),
    fc.constant({ kind: "no tag", value: {} }),
  )
  .map(({ kind, value }) => make(`envelope: ${kind}`, API_REQUEST_SUBJECT, jsonText(value), { malformed: true }));

/** Large bodies (100 kB to 900 kB): long keys, long values, deep nesting, long non-JSON. */
const largeBody = fc
  .record({
    subject: anySubject,
    size: fc.integer({ min: 100_000, max: MAX_BODY_BYTES - 100 }),
    shape: fc.constantFrom(
      "long key, two tags",
      "long key over a forbidden key",
      "long key over deep nesting",
      "long id",
      "long code",
      "long array",
      "long non-JSON",
    ),
  })
  .map(({ subject, size, shape }) => {
    const long = "k".repeat(size);
    switch (shape) {
      case "long key, two tags":
        return make(`large: ${shape}`, API_REQUEST_SUBJECT, `{"${long}":{},"ListImages":{}}`, { malformed: true });
      case "long key over a forbidden key":
        return make(`large: ${shape}`, subject, `{"${long}":{"__proto__":1}}`, { malformed: true });
      case "long key over deep nesting":
        return make(`large: ${shape}`, subject, `{"${long}":${"[".repeat(40)}${"]".repeat(40)}}`, { malformed: true });
      case "long id":
        return make(`large: ${shape}`, apiSubject("GetImageSessionStats"), jsonText({ image_id: long }), {
          malformed: true,
          field: "GetImageSessionStats.image_id",
        });
      case "long code":
        return make(
          `large: ${shape}`,
          apiSubject("Evaluate"),
          jsonText({ client_id: "fuzz", code: "k".repeat(Math.max(size, 262_145)) }),
          {
            malformed: true,
            field: "Evaluate.code",
          },
        );
      case "long array":
        return make(`large: ${shape}`, subject, `[${"0,".repeat(Math.floor(size / 2) - 1)}0]`, { malformed: true });
      default:
        return make(`large: ${shape}`, subject, long, { malformed: true });
    }
  });

const anyCase: fc.Arbitrary<Case> = fc.oneof(
  { arbitrary: randomBytes, weight: 15 },
  { arbitrary: randomText, weight: 15 },
  { arbitrary: mutatedJson, weight: 10 },
  { arbitrary: randomJson, weight: 15 },
  { arbitrary: nearMissJson, weight: 10 },
  { arbitrary: spoiledField, weight: 20 },
  { arbitrary: wrongEnvelope, weight: 14 },
  { arbitrary: largeBody, weight: 1 },
);

/** Runs `run` over `items`, at most `width` at a time. */
async function inFlight<T>(items: readonly T[], width: number, run: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let item = items[next++]; item !== undefined; item = items[next++]) await run(item);
  };
  await Promise.all(Array.from({ length: width }, worker));
}

const preview = (c: Case): string => {
  const text = Buffer.from(c.body.subarray(0, 120)).toString("utf8");
  return `${c.kind} on ${c.subject}, ${c.body.length} bytes: ${JSON.stringify(text)}${c.body.length > 120 ? "…" : ""}`;
};

type Verdict = { readonly ok: true; readonly refused: boolean } | { readonly ok: false; readonly problem: string };
const wrong = (problem: string): Verdict => ({ ok: false, problem });

/**
 * Judges the reply to `c`. A body that does not decode must be refused with `InvalidRequest` naming
 * where the problem is, as the decoder does (`refused`); one that decodes is a real request, and
 * any protocol response will do (`InvalidRequest` included: an `Evaluate` without a context is one).
 */
function judge(c: Case, reply: Msg): Verdict {
  const decoded = decodeResponse(reply.data);
  if (!decoded.ok) return wrong(`undecodable reply (${decoded.error.message}): ${reply.string().slice(0, 200)}`);
  const response: ResponseValue = decoded.value;
  if (response.type === "Error") {
    const header = reply.headers?.get(ServiceErrorCodeHeader);
    if (header !== String(SERVICE_ERROR_CODES[response.code])) {
      return wrong(`Error ${response.code} with the service error code header ${header}`);
    }
  }
  const expected = decodeAsService(c);
  if (expected.ok) {
    if (c.malformed) return wrong(`the generator built a valid ${expected.value.type} (a test bug)`);
    return { ok: true, refused: false };
  }
  if (response.type !== "Error" || response.code !== "InvalidRequest") {
    return wrong(`expected InvalidRequest (${expected.error.message}), got ${JSON.stringify(response).slice(0, 200)}`);
  }
  // The diagnosis starts with where the problem is (`CreateSession.image_id: ...`). A fix may shorten
  // or clean up a long or odd one, so only a short, printable path is held to that.
  const { path } = expected.error;
  if (/^[\x20-\x7e]{1,200}$/.test(path) && !namesField(response.message, path)) {
    return wrong(
      `expected a message naming ${path} (${expected.error.message}), got ${JSON.stringify(response.message)}`,
    );
  }
  if (c.field !== undefined && !namesField(response.message, c.field)) {
    return wrong(`the message does not name ${c.field}: ${response.message}`);
  }
  return { ok: true, refused: true };
}

/** Counts by kind, each with the first body of that kind that was answered wrongly. */
function report(problems: readonly { kind: string; text: string }[]): string {
  const byKind = new Map<string, { count: number; first: string }>();
  for (const { kind, text } of problems) {
    const seen = byKind.get(kind);
    if (seen === undefined) byKind.set(kind, { count: 1, first: text });
    else seen.count += 1;
  }
  return [...byKind].map(([kind, { count, first }]) => `[${kind}] ${count} wrong, e.g. ${first}`).join("\n");
}

/** `Evaluate.code: ...`, `Evaluate.code[0]: ...` and `Evaluate.code.x: ...` all name `Evaluate.code`. */
const namesField = (message: string, field: string): boolean =>
  message.startsWith(field) && [":", ".", "["].includes(message.charAt(field.length));

/** For each body, the error code it is answered with (`null` for a success), or why it got no protocol answer. */
async function refusals(h: ServiceHarness, bodies: readonly (readonly [string, string])[]): Promise<(string | null)[]> {
  return Promise.all(
    bodies.map(async ([subject, body]) => {
      let reply: Msg;
      try {
        reply = await h.client.nc.request(subject, body, { timeout: REPLY_TIMEOUT_MS });
      } catch (error) {
        return `no reply (${error instanceof Error ? error.message : String(error)})`;
      }
      const decoded = decodeResponse(reply.data);
      if (!decoded.ok) return `undecodable reply (${decoded.error.message})`;
      return decoded.value.type === "Error" ? decoded.value.code : null;
    }),
  );
}

async function answersListImages(h: ServiceHarness): Promise<void> {
  const images = await h.client.listImages();
  expect(images).toEqual({ type: "Images", images: [] });
}

const failuresToAnswer = (h: ServiceHarness) =>
  h.logged.filter((e) => e.level === "error").map((e) => `${e.msg} ${JSON.stringify(e.obj).slice(0, 200)}`);

describe("NATS API - malformed requests", () => {
  it(`answers ${CASES} random and malformed bodies on every subject decodably, refusing the malformed ones by what is wrong, and keeps serving`, async () => {
    const h = await startService({ nats: { servers: nats().url } });
    const seed = Number(process.env["STUI_FUZZ_SEED"] ?? randomInt(2 ** 31));
    const replay = `seed ${seed} (STUI_FUZZ_SEED=${seed} replays it)`;
    // A valid ConnectImage would add an image that dials whatever address it names: not sent.
    const cases = fc.sample(anyCase, { numRuns: CASES, seed }).filter((c) => {
      const d = decodeAsService(c);
      return !(d.ok && d.value.type === "ConnectImage");
    });
    const maxPayload = h.client.nc.info?.max_payload ?? 1024 * 1024;
    expect(Math.max(...cases.map((c) => c.body.length)), replay).toBeLessThan(maxPayload);

    const problems: { kind: string; text: string }[] = [];
    let refused = 0;
    const started = performance.now();
    await inFlight(cases, IN_FLIGHT, async (c) => {
      let reply: Msg;
      try {
        reply = await h.client.nc.request(c.subject, c.body, { timeout: REPLY_TIMEOUT_MS });
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        problems.push({ kind: c.kind, text: `${preview(c)}\n    no reply (${reason})` });
        return;
      }
      const verdict = judge(c, reply);
      if (!verdict.ok) problems.push({ kind: c.kind, text: `${preview(c)}\n    ${verdict.problem}` });
      else if (verdict.refused) refused += 1;
    });
    const elapsedMs = performance.now() - started;
    console.log(
      `fuzz: ${cases.length} bodies, ${IN_FLIGHT} in flight, answered in ${Math.round(elapsedMs)} ms ` +
        `(${Math.round((cases.length / elapsedMs) * 1000)}/s), ${refused} refused as malformed, ${problems.length} answered wrongly`,
    );

    const summary = `${problems.length} of ${cases.length} bodies answered wrongly, ${replay}:\n${report(problems)}\n`;
    expect(problems.length, summary).toBe(0);
    expect(refused, `only ${refused} of ${cases.length} malformed, ${replay}`).toBeGreaterThanOrEqual(10_000);
    expect(refused / cases.length).toBeGreaterThan(0.9);
    await answersListImages(h);
    expect(failuresToAnswer(h)).toEqual([]);
    expect(elapsedMs, `${cases.length} requests took ${Math.round(elapsedMs)} ms`).toBeLessThan(30_000);
  }, 120_000);

  // Found by the run above: each pins one cause down with fixed bodies.
  it("answers bodies whose diagnosis holds a line break, which a NATS header cannot carry", async () => {
    const h = await startService({ nats: { servers: nats().url } });
    const bodies: [string, string][] = [
      // JSON.parse's message quotes the text it choked on, line breaks included.
      [apiSubject("ListImages"), "ab\ncd"],
      [API_REQUEST_SUBJECT, "x\r"],
      // The envelope's message lists the keys it found; the forbidden-key message gives its path.
      [API_REQUEST_SUBJECT, JSON.stringify({ "a\nb": {}, ListImages: {} })],
      [apiSubject("GetImageSessionStats"), `{"a\\r\\nb": {"__proto__": 1}}`],
    ];
    expect(await refusals(h, bodies)).toEqual(bodies.map(() => "InvalidRequest"));
    await answersListImages(h);
    expect(failuresToAnswer(h)).toEqual([]);
  });

  it("answers bodies whose diagnosis would echo a key of hundreds of kilobytes past max_payload", async () => {
    const h = await startService({ nats: { servers: nats().url } });
    const bodies: [string, string][] = [
      // The message names the keys, and goes out twice: in the body and in the error header.
      [API_REQUEST_SUBJECT, `{"${"k".repeat(600_000)}": {}, "ListImages": {}}`],
      // The path to a forbidden or too deep value is in the message and in `details.path`.
      [apiSubject("ListImages"), `{"${"k".repeat(400_000)}": {"__proto__": 1}}`],
      [apiSubject("ListImages"), `{"${"k".repeat(400_000)}": ${"[".repeat(40)}${"]".repeat(40)}}`],
    ];
    expect(await refusals(h, bodies)).toEqual(bodies.map(() => "InvalidRequest"));
    await answersListImages(h);
    expect(failuresToAnswer(h)).toEqual([]);
  });
});
