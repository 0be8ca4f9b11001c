import { describe, expect, it } from "vitest";
import {
  DecodeError,
  decodeEvent,
  decodeImageReply,
  decodeImageRequest,
  decodeImageResult,
  decodeRequest,
  decodeRequestBody,
  decodeResponse,
  decodeSessionRecord,
  decodeSessionRecordValue,
  DEFAULT_IMAGE_ADDRESS,
  DEFAULT_IMAGE_ID,
  encodeRequest,
  encodeResponse,
  errorResponse,
  type Decoded,
  type Request,
} from "../src/protocol/index.js";

function errorOf<T>(decoded: Decoded<T>): DecodeError {
  if (decoded.ok) throw new Error(`expected a decode error, got ${JSON.stringify(decoded.value)}`);
  expect(decoded.error).toBeInstanceOf(DecodeError);
  return decoded.error;
}

function valueOf<T>(decoded: Decoded<T>): T {
  if (!decoded.ok) throw decoded.error;
  return decoded.value;
}

describe("protocol codec - wire shape is serde's default", () => {
  it("encodes a request externally tagged with snake_case fields and null for None", () => {
    const request: Request = {
      type: "SwitchImageContext",
      client_id: "c1",
      from_image_id: null,
      to_image_id: "staging",
      preserve_context: true,
    };
    expect(JSON.parse(encodeRequest(request))).toEqual({
      SwitchImageContext: { client_id: "c1", from_image_id: null, to_image_id: "staging", preserve_context: true },
    });
  });

  it("decodes a field-less request from a bare string or an empty object", () => {
    expect(valueOf(decodeRequest('"ListImages"'))).toEqual({ type: "ListImages" });
    expect(valueOf(decodeRequest('{"GetConnectionHealthSummary":{}}'))).toEqual({ type: "GetConnectionHealthSummary" });
  });

  it("fills left-out options with null and left-out flags with their defaults", () => {
    expect(valueOf(decodeRequest('{"CleanupImageSessions":{"image_id":"dev"}}'))).toEqual({
      type: "CleanupImageSessions",
      image_id: "dev",
      force: false,
      preserve_active: true,
      max_age_hours: null,
      session_ids: null,
    });
  });

  it("ignores unknown fields, as serde does", () => {
    expect(valueOf(decodeRequest('{"DisconnectImage":{"image_id":"dev","extra":1}}'))).toEqual({
      type: "DisconnectImage",
      image_id: "dev",
    });
  });

  it("encodes an error response with its code as a plain string", () => {
    expect(JSON.parse(encodeResponse(errorResponse("ImageNotFound", "no image x")))).toEqual({
      Error: { code: "ImageNotFound", message: "no image x", details: null },
    });
  });

  it("fills in null for an image's reconnection figures that an older peer leaves out", () => {
    const status = {
      image_id: "dev",
      name: null,
      address: "tcp://x:1",
      status: "Reconnecting",
      connection_health: "Unknown",
      last_seen: null,
      last_activity: null,
      session_count: 0,
      active_sessions: 0,
      orphaned_sessions: 0,
      rtt_ms: null,
      image_name: null,
      image_version: null,
    };
    expect(valueOf(decodeResponse(JSON.stringify({ ImageConnectionStatus: status })))).toMatchObject({
      reconnect_attempt: null,
      next_attempt_at: null,
    });
    const at = "2026-01-01T00:00:00Z";
    const event = {
      specversion: "1.0",
      id: "e1",
      source: "/stui/a",
      type: "io.stui.image.status.changed",
      time: at,
      sequence: 1,
      data: { image_id: "dev", status: "Reconnecting", previous_status: "Connected", reason: null, at },
    };
    expect(valueOf(decodeEvent(JSON.stringify(event))).data).toMatchObject({
      reconnect_attempt: null,
      next_attempt_at: null,
    });
  });

  it("decodes a per-endpoint body without the envelope", () => {
    expect(valueOf(decodeRequestBody("GetImageSessionStats", '{"image_id":"dev"}'))).toEqual({
      type: "GetImageSessionStats",
      image_id: "dev",
    });
  });
});

describe("protocol codec - bad input gets one typed error naming the path", () => {
  it("names the variant and field of a wrong type", () => {
    const error = errorOf(
      decodeRequest(
        '{"SwitchImageContext":{"client_id":"c","from_image_id":null,"to_image_id":5,"preserve_context":true}}',
      ),
    );
    expect(error.message).toBe("SwitchImageContext.to_image_id: expected string, got number");
    expect(error.kind).toBe("Invalid");
    expect(error.path).toBe("SwitchImageContext.to_image_id");
  });

  it("names a missing field", () => {
    expect(errorOf(decodeRequest('{"GetImageSessionStats":{}}')).message).toBe(
      "GetImageSessionStats.image_id: missing field, expected string",
    );
  });

  it("names an unknown variant and lists the known ones", () => {
    const error = errorOf(decodeRequest('{"DropAllTables":{}}'));
    expect(error.kind).toBe("UnknownVariant");
    expect(error.message).toMatch(/^Request: unknown variant "DropAllTables", expected one of ListImageSessions/);
  });

  it("refuses a wrong enum value inside a response, with the array index in the path", () => {
    const sessions = [
      {
        session_id: "s",
        client_id: "c",
        session_name: null,
        description: null,
        created_at: "2026-01-01T00:00:00Z",
        last_activity: "2026-01-01T00:00:00Z",
        is_active: true,
        orphaned_at: null,
        image_id: "dev",
        image_address: "tcp://x:1",
        image_name: null,
        image_version: null,
        connection_status: "Sleeping",
      },
    ];
    const error = errorOf(decodeResponse(JSON.stringify({ ImageSessions: { sessions } })));
    expect(error.path).toBe("ImageSessions.sessions[0].connection_status");
    expect(error.reason).toMatch(/^expected "Connected" \| "Disconnected"/);
  });

  it("refuses an image id that is not a subject token", () => {
    expect(errorOf(decodeRequest('{"DisconnectImage":{"image_id":"a.b"}}')).path).toBe("DisconnectImage.image_id");
  });

  it("refuses more than one variant key, an array, a number", () => {
    expect(errorOf(decodeRequest('{"ListImages":{},"DisconnectImage":{}}')).message).toMatch(/exactly one variant key/);
    expect(errorOf(decodeRequest("[]")).message).toBe("Request: expected an object with one variant key, got array");
    expect(errorOf(decodeRequest("42")).message).toBe("Request: expected an object with one variant key, got number");
  });

  it("refuses a bare string for a variant that has fields", () => {
    expect(errorOf(decodeRequest('"CreateSession"')).message).toMatch(/has fields/);
  });

  it("reports text that is not JSON, and bytes that are not UTF-8", () => {
    expect(errorOf(decodeRequest("{nope")).kind).toBe("NotJson");
    expect(errorOf(decodeRequest(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]))).kind).toBe("NotUtf8");
  });

  it("refuses input over the size limit before parsing it", () => {
    const big = JSON.stringify({ Evaluate: { client_id: "c", image_id: null, code: "x".repeat(2000) } });
    const error = errorOf(decodeRequest(big, { maxBytes: 1000, maxDepth: 32 }));
    expect(error.kind).toBe("TooLarge");
    expect(errorOf(decodeRequest(Buffer.from(big), { maxBytes: 1000, maxDepth: 32 })).kind).toBe("TooLarge");
    // Multi-byte characters count as bytes, not UTF-16 units.
    expect(errorOf(decodeRequest(`"${"é".repeat(600)}"`, { maxBytes: 1000, maxDepth: 32 })).kind).toBe("TooLarge");
  });

  it("refuses nesting deeper than the limit, and survives hostile depth", () => {
    const deep = (n: number) => `{"ListImageSessions":{"x":${"[".repeat(n)}${"]".repeat(n)}}}`;
    expect(errorOf(decodeRequest(deep(40))).kind).toBe("TooDeep");
    expect(valueOf(decodeRequest(deep(10))).type).toBe("ListImageSessions");
    expect(errorOf(decodeRequest(deep(200_000), { maxBytes: 10_000_000, maxDepth: 32 })).kind).toMatch(
      /TooDeep|NotJson/,
    );
  });

  it("refuses __proto__ and constructor keys anywhere without touching any prototype", () => {
    const before = Object.getOwnPropertyNames(Object.prototype).length;
    const proto = errorOf(decodeRequest('{"ListImageSessions":{"__proto__":{"polluted":true}}}'));
    expect(proto.kind).toBe("ForbiddenKey");
    expect(proto.path).toBe("ListImageSessions.__proto__");
    const nested = errorOf(
      decodeResponse('{"Error":{"code":"Internal","message":"m","details":{"a":[{"constructor":{"prototype":1}}]}}}'),
    );
    expect(nested.path).toBe("Error.details.a[0].constructor");
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getOwnPropertyNames(Object.prototype).length).toBe(before);
  });
});

describe("protocol codec - image protocol", () => {
  it("decodes a request by its command and defaults missing parameters", () => {
    expect(valueOf(decodeImageRequest('{"id":"1","command":"ping"}'))).toEqual({
      id: "1",
      command: "ping",
      parameters: {},
    });
  });

  it("names a missing parameter under its command", () => {
    expect(errorOf(decodeImageRequest('{"id":"1","command":"evaluate","parameters":{}}')).message).toBe(
      "evaluate.parameters.code: missing field, expected string",
    );
  });

  it("names an unknown command", () => {
    expect(errorOf(decodeImageRequest('{"id":"1","command":"format_disk"}')).message).toMatch(
      /^ImageRequest.command: unknown command "format_disk"/,
    );
  });

  it("types a success result by the command it answers", () => {
    const reply = valueOf(decodeImageReply('{"id":"1","status":"success","result":{"message":"pong"}}'));
    expect(reply.status).toBe("success");
    if (reply.status !== "success") return;
    expect(errorOf(decodeImageResult("ping", reply.result)).path).toMatch(/^ping\.result\./);
  });

  it("keeps an error reply's type and message, and accepts one without an id", () => {
    expect(
      valueOf(decodeImageReply('{"id":null,"status":"error","error":"bad json","error_type":"InvalidRequest"}')),
    ).toMatchObject({ id: null, status: "error", error_type: "InvalidRequest" });
  });

  it("refuses a reply with an unknown status", () => {
    expect(errorOf(decodeImageReply('{"id":"1","status":"maybe"}')).kind).toBe("UnknownVariant");
  });
});

describe("protocol codec - events", () => {
  it("refuses an event whose data does not match its type", () => {
    const event = {
      specversion: "1.0",
      id: "e1",
      source: "/stui/a",
      type: "io.stui.instance.started",
      time: "2026-01-01T00:00:00Z",
      sequence: 1,
      data: { image_id: "dev" },
    };
    expect(errorOf(decodeEvent(JSON.stringify(event))).path).toBe("io.stui.instance.started.data.instance_id");
  });

  it("refuses a sequence that is not a positive integer", () => {
    const event = {
      specversion: "1.0",
      id: "e1",
      source: "/stui/a",
      type: "io.stui.instance.started",
      time: "2026-01-01T00:00:00Z",
      sequence: 0,
      data: { instance_id: "a", at: "2026-01-01T00:00:00Z" },
    };
    expect(errorOf(decodeEvent(JSON.stringify(event))).path).toBe("io.stui.instance.started.sequence");
  });
});

describe("protocol codec - stored session records", () => {
  it("decodes a record an older STUI wrote, without image fields, onto the default image", () => {
    const legacy = {
      session_id: "s1",
      client_id: "c1",
      created_at: "2025-06-01T08:00:00Z",
      last_activity: "2025-06-01T09:00:00Z",
    };
    expect(valueOf(decodeSessionRecord(JSON.stringify(legacy)))).toEqual({
      ...legacy,
      session_name: null,
      description: null,
      is_active: true,
      orphaned_at: null,
      workspace_context: { current_workspace: null, input_history: [], variables: {} },
      image_id: DEFAULT_IMAGE_ID,
      image_address: DEFAULT_IMAGE_ADDRESS,
      image_name: null,
      image_version: null,
      image_metadata: {},
    });
  });

  it("checks an already parsed record for forbidden keys and cycles too", () => {
    const cyclic: Record<string, unknown> = { session_id: "s" };
    cyclic.self = cyclic;
    expect(errorOf(decodeSessionRecordValue(cyclic)).kind).toBe("TooDeep");
    const withProto = JSON.parse('{"session_id":"s","image_metadata":{"__proto__":"x"}}') as unknown;
    expect(errorOf(decodeSessionRecordValue(withProto)).kind).toBe("ForbiddenKey");
  });
});
