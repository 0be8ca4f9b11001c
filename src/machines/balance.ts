/**
 * Spreading the shared images over the live instances, as one instance decides for itself from
 * what it knows (pure): who owns what, and who is alive. A free lease is taken at once by the least
 * loaded instances only; an instance owning two or more images more than the least loaded hands
 * one over. Each transfer narrows the spread, so the images settle within one of each other and
 * stay there: no image moves back and forth.
 */

/** How many images each live instance owns; every member is listed, with 0 when it owns none. */
export function loadsOf(owners: Iterable<string | null>, members: Iterable<string>): Map<string, number> {
  const loads = new Map<string, number>();
  for (const member of members) loads.set(member, 0);
  for (const owner of owners) {
    if (owner !== null && loads.has(owner)) loads.set(owner, (loads.get(owner) ?? 0) + 1);
  }
  return loads;
}

const least = (loads: ReadonlyMap<string, number>): number => Math.min(...loads.values());

/** Whether `self` should take a free lease at once: nobody alive owns fewer. */
export function isLeastLoaded(self: string, loads: ReadonlyMap<string, number>): boolean {
  return (loads.get(self) ?? 0) <= least(loads);
}

/** Whether `self` should hand one of its images over: it owns two or more more than the least loaded. */
export function shouldHandOver(self: string, loads: ReadonlyMap<string, number>): boolean {
  return (loads.get(self) ?? 0) - least(loads) >= 2;
}
