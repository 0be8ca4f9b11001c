/**
 * `npm run bench -- <name...>`: runs the named benchmarks (all when none is named).
 * Each prints its figures and the baseline it is compared with in the same run.
 */
const benchmarks: Record<string, () => Promise<{ run: () => void | Promise<void> }>> = {
  protocol: () => import("./protocol.js"),
  image: () => import("./image.js"),
  sessions: () => import("./sessions.js"),
  nats: () => import("./nats.js"),
  store: () => import("./store.js"),
  cluster: () => import("./cluster.js"),
  panel: () => import("./panel.js"),
  inspect: () => import("./inspect.js"),
};

const wanted = process.argv.slice(2);
const unknown = wanted.filter((name) => !(name in benchmarks));
if (unknown.length > 0) {
  console.error(`unknown benchmark ${unknown.join(", ")}; known: ${Object.keys(benchmarks).join(", ")}`);
  process.exit(2);
}
console.log(`node ${process.version}, ${process.platform}/${process.arch}`);
for (const name of wanted.length > 0 ? wanted : Object.keys(benchmarks)) {
  const loader = benchmarks[name];
  if (loader === undefined) continue;
  console.log(`\n== ${name} ==`);
  await (await loader()).run();
}
