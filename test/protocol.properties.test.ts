import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { z } from "zod";
import {
  DecodeError,
  decodeEvent,
  decodeImageReply,
  decodeImageRequest,
  decodeImageResult,
  decodeRequest,
  decodeResponse,
  decodeSessionRecord,
  encodeEvent,
  encodeImageReply,
  encodeImageRequest,
  encodeRequest,
  encodeResponse,
  encodeSessionRecord,
  EVENT_TYPES,
  IMAGE_COMMANDS,
  imageCommands,
  Request,
  Response,
  SessionStateData,
  type SessionStateData as SessionRecord,
  StuiEvent,
  ImageRequest,
  type Decoded,
  type ImageReply,
  type Request as RequestValue,
  type Response as ResponseValue,
  type StuiEvent as StuiEventValue,
  type ImageRequest as ImageRequestValue,
} from "../src/protocol/index.js";
import { arbitraryOf, safeJson } from "./helpers/arbitrary.js";

const RUNS = { numRuns: 200 };

/** Fails the property on anything but a value or a DecodeError. */
function settled(decoded: Decoded<unknown>): Decoded<unknown> {
  if (!decoded.ok) expect(decoded.error).toBeInstanceOf(DecodeError);
  return decoded;
}

describe("protocol properties - random valid values round-trip", () => {
  it.each(Request.names)("request %s", (name) => {
    const arb = arbitraryOf(Request.variants[name]).map(
      (fields) => ({ type: name, ...(fields as object) }) as RequestValue,
    );
    fc.assert(
      fc.property(arb, (request) => {
        expect(decodeRequest(encodeRequest(request))).toEqual({ ok: true, value: request });
      }),
      RUNS,
    );
  });

  it.each(Response.names)("response %s", (name) => {
    const arb = arbitraryOf(Response.variants[name]).map(
      (fields) => ({ type: name, ...(fields as object) }) as ResponseValue,
    );
    fc.assert(
      fc.property(arb, (response) => {
        expect(decodeResponse(encodeResponse(response))).toEqual({ ok: true, value: response });
      }),
      RUNS,
    );
  });

  it.each(IMAGE_COMMANDS)("image request and result of %s", (command) => {
    const request = arbitraryOf(ImageRequest.variants[command]) as fc.Arbitrary<ImageRequestValue>;
    const result = arbitraryOf(imageCommands[command].result as z.ZodType);
    fc.assert(
      fc.property(request, result, (req, res) => {
        expect(decodeImageRequest(encodeImageRequest(req))).toEqual({ ok: true, value: req });
        const reply: ImageReply = { id: req.id, status: "success", result: res, timestamp: null };
        const decoded = decodeImageReply(encodeImageReply(reply));
        expect(decoded).toEqual({ ok: true, value: reply });
        expect(decodeImageResult(command, res)).toEqual({ ok: true, value: res });
      }),
      RUNS,
    );
  });

  it.each(EVENT_TYPES)("event %s", (type) => {
    const arb = arbitraryOf(StuiEvent.variants[type]) as fc.Arbitrary<StuiEventValue>;
    fc.assert(
      fc.property(arb, (event) => {
        expect(decodeEvent(encodeEvent(event))).toEqual({ ok: true, value: event });
      }),
      RUNS,
    );
  });

  it("session record", () => {
    const arb = arbitraryOf(SessionStateData) as fc.Arbitrary<SessionRecord>;
    fc.assert(
      fc.property(arb, (record) => {
        expect(decodeSessionRecord(encodeSessionRecord(record))).toEqual({ ok: true, value: record });
      }),
      RUNS,
    );
  });
});

const decoders = [
  decodeRequest,
  decodeResponse,
  decodeImageRequest,
  decodeImageReply,
  decodeEvent,
  decodeSessionRecord,
];

describe("protocol properties - junk never yields anything but the typed decode error", () => {
  it("random strings", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        for (const decode of decoders) settled(decode(text));
      }),
      { numRuns: 1000 },
    );
  });

  it("random bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        for (const decode of decoders) settled(decode(bytes));
      }),
      { numRuns: 1000 },
    );
  });

  it("random JSON, including forbidden keys", () => {
    const junk = fc.oneof(
      fc.jsonValue({ maxDepth: 5 }),
      fc.dictionary(fc.constantFrom(...Request.names, "__proto__", "constructor"), fc.jsonValue({ maxDepth: 3 })),
      fc.anything({ withObjectString: true, maxDepth: 3 }).map((v) => {
        try {
          return JSON.stringify(v) ?? "null";
        } catch {
          return "null";
        }
      }),
    );
    fc.assert(
      fc.property(junk, (value) => {
        const text = typeof value === "string" ? value : JSON.stringify(value);
        for (const decode of decoders) settled(decode(text));
      }),
      { numRuns: 1000 },
    );
  });

  it("a valid request with one field replaced by junk is refused, naming that field", () => {
    const cases = fc.constantFrom(...Request.names).chain((name) => {
      const schema = Request.variants[name];
      const keys = Object.keys(schema.shape);
      return fc.record({
        name: fc.constant(name),
        fields: arbitraryOf(schema),
        key: keys.length > 0 ? fc.constantFrom(...keys) : fc.constant(undefined),
        junk: safeJson,
      });
    });
    fc.assert(
      fc.property(cases, ({ name, fields, key, junk }) => {
        if (key === undefined) return;
        const fieldSchema = (Request.variants[name].shape as Record<string, z.ZodType>)[key];
        if (fieldSchema?.safeParse(junk).success !== false || junk === undefined) return;
        const body = { ...(fields as object), [key]: junk };
        const decoded = settled(decodeRequest(JSON.stringify({ [name]: body })));
        expect(decoded.ok).toBe(false);
        if (!decoded.ok) expect(decoded.error.path.startsWith(`${name}.${key}`)).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });
});
