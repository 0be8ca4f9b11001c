import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import { describe, expect, it } from "vitest";
import {
  decodeEvent,
  decodeImageReply,
  decodeImageRequest,
  decodeImageResult,
  decodeRequest,
  decodeResponse,
  decodeSessionRecord,
  EVENT_TYPES,
  IMAGE_COMMANDS,
  REQUEST_TYPES,
  Response,
  type Decoded,
  type ImageCommand,
} from "../src/protocol/index.js";
import { generateJsonSchemas } from "../src/protocol/json-schema.js";

const doc = readFileSync(join(import.meta.dirname, "..", "docs", "protocol.md"), "utf8");
const examples = [...doc.matchAll(/```json ([a-z:_-]+)\n([\s\S]*?)```/g)].map((m) => ({
  kind: m[1] ?? "",
  text: m[2] ?? "",
}));

const schemas = generateJsonSchemas();
const ajv = new Ajv2020({ strict: false, allErrors: true });
ajv.addFormat("date-time", (value: string) => !Number.isNaN(Date.parse(value)));
const validatorOf = (file: string) => {
  const schema = schemas.get(file);
  if (schema === undefined) throw new Error(`no schema ${file}`);
  return ajv.compile(schema);
};

function decodeExample(kind: string, text: string): { decoded: Decoded<unknown>; schema: string; tag: string } {
  const [family, command] = kind.split(":");
  switch (family) {
    case "request": {
      const decoded = decodeRequest(text);
      return { decoded, schema: "request.schema.json", tag: decoded.ok ? decoded.value.type : "" };
    }
    case "response": {
      const decoded = decodeResponse(text);
      return { decoded, schema: "response.schema.json", tag: decoded.ok ? decoded.value.type : "" };
    }
    case "image-request": {
      const decoded = decodeImageRequest(text);
      return { decoded, schema: "image/request.schema.json", tag: decoded.ok ? decoded.value.command : "" };
    }
    case "image-reply": {
      const decoded = decodeImageReply(text);
      if (!decoded.ok || command === undefined) {
        return { decoded, schema: "image/reply.schema.json", tag: decoded.ok ? decoded.value.status : "" };
      }
      if (decoded.value.status !== "success") throw new Error(`${kind} example is not a success reply`);
      const result = decodeImageResult(command as ImageCommand, decoded.value.result);
      return { decoded: result, schema: `image/${command}.result.schema.json`, tag: `result:${command}` };
    }
    case "event": {
      const decoded = decodeEvent(text);
      return { decoded, schema: "event.schema.json", tag: decoded.ok ? decoded.value.type : "" };
    }
    case "session-record":
      return { decoded: decodeSessionRecord(text), schema: "session-record.schema.json", tag: "session-record" };
    default:
      throw new Error(`unknown example kind ${kind}`);
  }
}

describe("protocol docs - every JSON example in docs/protocol.md", () => {
  it("has examples to check", () => {
    expect(examples.length).toBeGreaterThan(40);
  });

  it.each(examples.map((e, i) => [i, e.kind, e.text] as const))(
    "example %i (%s) decodes with the codec and validates against its JSON Schema",
    (_i, kind, text) => {
      const { decoded, schema } = decodeExample(kind, text);
      if (!decoded.ok) throw decoded.error;
      const validate = validatorOf(schema);
      const wire: unknown = kind.includes(":") ? (JSON.parse(text) as { result: unknown }).result : JSON.parse(text);
      expect(validate(wire), ajv.errorsText(validate.errors)).toBe(true);
    },
  );

  it("shows every request, response, image command, image result and event type at least once", () => {
    const shown = new Set(examples.map((e) => decodeExample(e.kind, e.text).tag));
    const expected = [
      ...REQUEST_TYPES,
      ...Response.names,
      ...IMAGE_COMMANDS,
      ...IMAGE_COMMANDS.map((c) => `result:${c}`),
      "error",
      ...EVENT_TYPES,
      "session-record",
    ];
    expect(expected.filter((tag) => !shown.has(tag))).toEqual([]);
  });
});
