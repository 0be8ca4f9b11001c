/**
 * Model-based test of the session registry (fast-check commands): create, close, switch, an image
 * fails, an image returns, cleanup. After every command the stats agree with the listed sessions
 * and with a deliberately naive model, and cleanup with `preserve_active` never removes an active
 * session.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isActive, isOrphaned, SessionRegistry } from "../src/machines/session-registry.js";
import type { SessionStateData } from "../src/protocol/index.js";

const IMAGES = ["dev", "staging", "build"] as const;
const CLIENTS = ["alice", "bob"] as const;
const NOW = Date.parse("2026-11-25T12:00:00.000Z");

interface ModelSession {
  id: string;
  image: string;
  active: boolean;
  orphaned: boolean;
  idleHours: number;
}
interface Model {
  sessions: ModelSession[];
  down: Set<string>;
  contexts: Map<string, string>;
  next: number;
}
interface Real {
  readonly registry: SessionRegistry;
}

function session(id: string, image: string, client: string, idleHours: number): SessionStateData {
  const at = new Date(NOW - idleHours * 3_600_000).toISOString();
  return {
    session_id: id,
    client_id: client,
    session_name: null,
    description: null,
    created_at: at,
    last_activity: at,
    is_active: true,
    orphaned_at: null,
    workspace_context: { current_workspace: null, input_history: [], variables: {} },
    image_id: image,
    image_address: "tcp://127.0.0.1:5555",
    image_name: null,
    image_version: null,
    image_metadata: {},
  };
}

function checkInvariants(model: Model, real: Real): void {
  for (const image of IMAGES) {
    const listed = real.registry.sessionsOf(image);
    const stats = real.registry.statsOf(image);
    const expected = model.sessions.filter((s) => s.image === image);
    expect(stats.total_sessions).toBe(listed.length);
    expect(stats.total_sessions).toBe(expected.length);
    expect(stats.active_sessions).toBe(listed.filter(isActive).length);
    expect(stats.active_sessions).toBe(expected.filter((s) => s.active && !s.orphaned).length);
    expect(stats.orphaned_sessions).toBe(expected.filter((s) => s.orphaned).length);
  }
  expect(real.registry.sessionsOf(null).length).toBe(model.sessions.length);
  expect(real.registry.size).toBe(model.sessions.length);
}

class Create implements fc.Command<Model, Real> {
  constructor(
    readonly image: string,
    readonly client: string,
    readonly idleHours: number,
  ) {}
  check = (m: Readonly<Model>) => !m.down.has(this.image);
  run(m: Model, r: Real): void {
    const id = `s${m.next++}`;
    m.sessions.push({ id, image: this.image, active: true, orphaned: false, idleHours: this.idleHours });
    r.registry.put(session(id, this.image, this.client, this.idleHours), 1);
    checkInvariants(m, r);
  }
  toString = () => `create(${this.image}, ${this.client}, ${this.idleHours}h)`;
}

class Close implements fc.Command<Model, Real> {
  constructor(readonly pick: number) {}
  check = (m: Readonly<Model>) => m.sessions.length > 0;
  run(m: Model, r: Real): void {
    const [gone] = m.sessions.splice(this.pick % m.sessions.length, 1);
    if (gone === undefined) return;
    r.registry.remove(gone.id);
    checkInvariants(m, r);
  }
  toString = () => `close(#${this.pick})`;
}

class Switch implements fc.Command<Model, Real> {
  constructor(
    readonly client: string,
    readonly image: string,
  ) {}
  check = (m: Readonly<Model>) => !m.down.has(this.image);
  run(m: Model, r: Real): void {
    m.contexts.set(this.client, this.image);
    r.registry.setContext(this.client, this.image);
    expect(r.registry.contexts.get(this.client)).toBe(this.image);
    checkInvariants(m, r);
  }
  toString = () => `switch(${this.client} → ${this.image})`;
}

class ImageFails implements fc.Command<Model, Real> {
  constructor(readonly image: string) {}
  check = () => true;
  run(m: Model, r: Real): void {
    m.down.add(this.image);
    for (const s of m.sessions) if (s.image === this.image) s.orphaned = true;
    for (const s of r.registry.sessionsOf(this.image)) {
      if (!isOrphaned(s)) r.registry.put({ ...s, orphaned_at: new Date(NOW).toISOString() }, 2);
    }
    checkInvariants(m, r);
  }
  toString = () => `fails(${this.image})`;
}

class ImageReturns implements fc.Command<Model, Real> {
  constructor(readonly image: string) {}
  check = (m: Readonly<Model>) => m.down.has(this.image);
  run(m: Model, r: Real): void {
    // Orphans stay orphaned: what the image lost is not silently revived.
    m.down.delete(this.image);
    checkInvariants(m, r);
  }
  toString = () => `returns(${this.image})`;
}

class Cleanup implements fc.Command<Model, Real> {
  constructor(
    readonly image: string,
    readonly force: boolean,
    readonly preserveActive: boolean,
    readonly maxAgeHours: number | null,
  ) {}
  check = () => true;
  run(m: Model, r: Real): void {
    const criteria = {
      image_id: this.image,
      force: this.force,
      preserve_active: this.preserveActive,
      max_age_hours: this.maxAgeHours,
    };
    const removed = new Set(r.registry.selectCleanup(criteria, NOW));
    const expected = m.sessions.filter(
      (s) =>
        s.image === this.image &&
        (this.force || s.orphaned) &&
        !(this.preserveActive && s.active && !s.orphaned) &&
        (this.maxAgeHours === null || s.idleHours > this.maxAgeHours),
    );
    expect([...removed].sort()).toEqual(expected.map((s) => s.id).sort());
    if (this.preserveActive) {
      for (const id of removed) expect(isActive(r.registry.get(id) as SessionStateData)).toBe(false);
    }
    m.sessions = m.sessions.filter((s) => !removed.has(s.id));
    for (const id of removed) r.registry.remove(id);
    checkInvariants(m, r);
  }
  toString = () => `cleanup(${this.image}, force=${this.force}, preserve=${this.preserveActive}, ${this.maxAgeHours}h)`;
}

const image = fc.constantFrom(...IMAGES);
const client = fc.constantFrom(...CLIENTS);
const commands = fc.commands(
  [
    fc.tuple(image, client, fc.integer({ min: 0, max: 100 })).map(([i, c, h]) => new Create(i, c, h)),
    fc.nat().map((n) => new Close(n)),
    fc.tuple(client, image).map(([c, i]) => new Switch(c, i)),
    image.map((i) => new ImageFails(i)),
    image.map((i) => new ImageReturns(i)),
    fc
      .tuple(image, fc.boolean(), fc.boolean(), fc.option(fc.integer({ min: 0, max: 100 }), { nil: null }))
      .map(([i, f, p, a]) => new Cleanup(i, f, p, a)),
  ],
  { maxCommands: 60 },
);

describe("session registry - model-based", () => {
  it("keeps counts equal to the listed sessions, and preserve_active never removes an active session", () => {
    fc.assert(
      fc.property(commands, (cmds) => {
        const model: Model = { sessions: [], down: new Set(), contexts: new Map(), next: 0 };
        fc.modelRun(() => ({ model, real: { registry: new SessionRegistry() } }), cmds);
      }),
      { numRuns: 300 },
    );
  });
});
