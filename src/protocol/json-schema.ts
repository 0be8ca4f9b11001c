/**
 * JSON Schemas of every message, generated from the same zod schemas that validate them.
 * `npm run schemas` writes them to docs/schemas/; a test fails when the committed files are stale.
 */
import { StuiEvent, EVENT_TYPES } from "./events.js";
import { IMAGE_COMMANDS, ImageReply, ImageRequest, imageCommands } from "./image.js";
import { InspectAttach, InspectAttached, InspectBatch, InspectDetach, InspectDetached } from "./inspect.js";
import { SessionStateData } from "./model.js";
import { Request } from "./requests.js";
import { Response } from "./responses.js";
import { bodySchema } from "./tagged.js";

const DRAFT = "https://json-schema.org/draft/2020-12/schema";

function file(title: string, description: string, schema: Record<string, unknown>): Record<string, unknown> {
  return { $schema: DRAFT, title, description, ...schema };
}

/** Every schema file, keyed by its path below docs/schemas/. */
export function generateJsonSchemas(): Map<string, Record<string, unknown>> {
  const out = new Map<string, Record<string, unknown>>();
  out.set("request.schema.json", file("Request", "Any client request, externally tagged.", Request.jsonSchema()));
  for (const name of Request.names) {
    out.set(`request/${name}.schema.json`, file(name, `The ${name} request.`, Request.variantJsonSchema(name)));
  }
  out.set("response.schema.json", file("Response", "Any response, externally tagged.", Response.jsonSchema()));
  for (const name of Response.names) {
    out.set(`response/${name}.schema.json`, file(name, `The ${name} response.`, Response.variantJsonSchema(name)));
  }
  out.set("image/request.schema.json", file("ImageRequest", "Any request to an image.", ImageRequest.jsonSchema()));
  out.set("image/reply.schema.json", file("ImageReply", "Any reply from an image.", ImageReply.jsonSchema()));
  for (const command of IMAGE_COMMANDS) {
    out.set(
      `image/${command}.request.schema.json`,
      file(command, `The ${command} request to an image.`, ImageRequest.variantJsonSchema(command)),
    );
    out.set(
      `image/${command}.result.schema.json`,
      file(`${command} result`, `The result of a successful ${command}.`, bodySchema(imageCommands[command].result)),
    );
  }
  out.set("event.schema.json", file("Event", "Any event (CloudEvents 1.0 JSON).", StuiEvent.jsonSchema()));
  for (const type of EVENT_TYPES) {
    out.set(`events/${type}.schema.json`, file(type, `The ${type} event.`, StuiEvent.variantJsonSchema(type)));
  }
  const inspect = [
    ["attach.request", "InspectAttach", "stui.inspect.<instance_id>.attach: attach or renew.", InspectAttach],
    ["attach.reply", "InspectAttached", "The answer to an attach: the live actors.", InspectAttached],
    ["detach.request", "InspectDetach", "stui.inspect.<instance_id>.detach.", InspectDetach],
    ["detach.reply", "InspectDetached", "The answer to a detach.", InspectDetached],
    ["batch", "InspectBatch", "stui.inspect.<instance_id>.events: records while attached.", InspectBatch],
  ] as const;
  for (const [name, title, description, schema] of inspect) {
    out.set(`inspect/${name}.schema.json`, file(title, description, bodySchema(schema)));
  }
  out.set(
    "session-record.schema.json",
    file("SessionStateData", "A stored session record.", bodySchema(SessionStateData)),
  );
  return out;
}

/** The exact text written for a schema file. */
export const schemaText = (schema: Record<string, unknown>): string => `${JSON.stringify(schema, null, 2)}\n`;
