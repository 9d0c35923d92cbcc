/**
 * lib/ reads top-down: each room (lib/<room>/) imports only rooms on lower floors, and no file
 * imports itself back through a chain (no cycles). The floor order is declared once, here; a new
 * room must be placed on a floor before it can be imported.
 */
import assert from "node:assert/strict";
import { dirname, join, relative, resolve } from "node:path";

/** Lowest floor first. Rooms on one floor do not import each other. */
const FLOORS: string[][] = [
  ["util"],
  ["tf", "data", "runs"],
  ["models"],
  ["onnx", "charts"],
  ["features", "inference", "tracking"],
  ["evaluation"],
  ["explain", "ensemble", "training"],
  ["reporting", "serving"],
  ["notebook"],
  ["cli"],
];

const LIB = resolve(new URL("../lib", import.meta.url).pathname);
const floorOf = new Map(FLOORS.flatMap((rooms, i) => rooms.map((r) => [r, i] as const)));

/** Relative specifiers of static imports/re-exports and dynamic `import("…")`, comments removed. */
function importsOf(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  const specs = [
    ...code.matchAll(/^\s*(?:import|export)\b[^;"']*?from\s*["'](\.[^"']+)["']/gm),
    ...code.matchAll(/^\s*import\s*["'](\.[^"']+)["']/gm),
    ...code.matchAll(/\bimport\(\s*["'](\.[^"']+)["']\s*\)/g),
  ];
  return specs.map((m) => m[1]);
}

async function libGraph(): Promise<Map<string, string[]>> {
  const graph = new Map<string, string[]>();
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(dir)) {
      const path = join(dir, e.name);
      if (e.isDirectory) await walk(path);
      else if (e.name.endsWith(".ts")) {
        const deps = importsOf(await Deno.readTextFile(path))
          .map((s) => resolve(dirname(path), s))
          .filter((p) => p.startsWith(LIB + "/"));
        graph.set(relative(LIB, path), deps.map((p) => relative(LIB, p)));
      }
    }
  };
  await walk(LIB);
  return graph;
}

const roomOf = (file: string) => file.split("/")[0];

Deno.test("the import parser sees static, re-export, side-effect and dynamic imports only", () => {
  const src = `/** import x from "../nope.ts" */\n// import "../nor.ts"\n` +
    `import { a } from "./a.ts";\nimport type {\n  B,\n} from "../b/b.ts";\n` +
    `export { c } from "../c/c.ts";\nimport "../d/d.ts";\nconst e = await import("../e/e.ts");\n` +
    `import { f } from "node:fs";\n`;
  assert.deepEqual(importsOf(src).sort(), [
    "../b/b.ts",
    "../c/c.ts",
    "../d/d.ts",
    "../e/e.ts",
    "./a.ts",
  ]);
});

Deno.test("every lib room imports only rooms on lower floors", async () => {
  const graph = await libGraph();
  const problems: string[] = [];
  for (const [file, deps] of graph) {
    const from = roomOf(file);
    if (!floorOf.has(from)) problems.push(`lib/${from}/ is on no floor (add it to FLOORS)`);
    for (const dep of deps) {
      const to = roomOf(dep);
      if (to === from) continue;
      const [a, b] = [floorOf.get(from) ?? -1, floorOf.get(to) ?? -1];
      if (b >= a) problems.push(`lib/${file} -> lib/${dep} (${from} may not import ${to})`);
    }
  }
  assert.deepEqual([...new Set(problems)], []);
});

Deno.test("no import cycles between lib files", async () => {
  const graph = await libGraph();
  const state = new Map<string, "open" | "done">();
  const cycles: string[] = [];
  const visit = (file: string, path: string[]) => {
    if (state.get(file) === "done") return;
    if (state.get(file) === "open") {
      cycles.push([...path.slice(path.indexOf(file)), file].join(" -> "));
      return;
    }
    state.set(file, "open");
    for (const dep of graph.get(file) ?? []) visit(dep, [...path, file]);
    state.set(file, "done");
  };
  for (const file of [...graph.keys()].sort()) visit(file, []);
  assert.deepEqual(cycles, []);
});
