import { describe, expect, it } from "vitest";
import {
  apiSubject,
  endpointName,
  eventSubject,
  isSubjectToken,
  REQUEST_TYPES,
  requestTypeOfEndpoint,
  type StuiEvent,
} from "../src/protocol/index.js";

describe("protocol subjects", () => {
  it("names each API endpoint after its request in snake_case", () => {
    expect(apiSubject("SwitchImageContext")).toBe("stui.api.switch_image_context");
    expect(apiSubject("GetConnectionHealthSummary")).toBe("stui.api.get_connection_health_summary");
    for (const type of REQUEST_TYPES) expect(requestTypeOfEndpoint(endpointName(type))).toBe(type);
    expect(requestTypeOfEndpoint("request")).toBeUndefined();
  });

  it("publishes each event on the subject DESIGN.md fixes", () => {
    const at = "2026-01-01T00:00:00.000Z";
    const base = { specversion: "1.0", id: "e", source: "/stui/a", time: at, sequence: 1 } as const;
    const extra = { datacontenttype: "application/json", subject: null } as const;
    const status: StuiEvent = {
      ...base,
      ...extra,
      type: "io.stui.image.status.changed",
      data: {
        image_id: "dev",
        status: "Failed",
        previous_status: "Reconnecting",
        reason: null,
        at,
        reconnect_attempt: null,
        next_attempt_at: null,
        failure: null,
      },
    };
    const orphaned: StuiEvent = {
      ...base,
      ...extra,
      type: "io.stui.session.orphaned",
      data: { image_id: "dev", session_id: "s", client_id: "c", reason: null, at },
    };
    const stopped: StuiEvent = { ...base, ...extra, type: "io.stui.instance.stopped", data: { instance_id: "a", at } };
    expect(eventSubject(status)).toBe("stui.events.image.dev.status");
    expect(eventSubject(orphaned)).toBe("stui.events.session.dev.orphaned");
    expect(eventSubject(stopped)).toBe("stui.events.instance.a.stopped");
  });

  it("accepts only single subject tokens as ids", () => {
    expect(isSubjectToken("dev_1-a")).toBe(true);
    for (const bad of ["", "a.b", "a b", "*", ">"]) expect(isSubjectToken(bad)).toBe(false);
  });
});
