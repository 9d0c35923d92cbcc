import assert from "node:assert/strict";
import { join } from "node:path";
import { cutOutputs, main } from "../lib/cli/features.ts";
import { sharedDir } from "../lib/util/paths.ts";

const opts = { sanitizeResources: false, sanitizeOps: false }; // ORT and sharp keep handles

async function capture(f: () => Promise<number>): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const log = console.log, error = console.error;
  console.log = (...a: unknown[]) => lines.push(a.join(" "));
  console.error = (...a: unknown[]) => lines.push(a.join(" "));
  try {
    return { code: await f(), out: lines.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

Deno.test("features CLI: bad flags exit 2 with usage", async () => {
  const r = await capture(() => main(["--model", "resnet50", "--bogus"]));
  assert.equal(r.code, 2);
  assert.match(r.out, /usage: deno task features/);
  assert.equal((await capture(() => main(["--model", "alexnet"]))).code, 2);
  assert.equal((await capture(() => main(["--model", "resnet50", "--cut", "nope"]))).code, 2);
  assert.equal((await capture(() => main(["--model", "resnet50", "--batch", "0"]))).code, 2);
});

Deno.test("features CLI: --cut names the frontier, head means pooled", () => {
  assert.deepEqual(cutOutputs("resnet50", "head"), ["head_pool"]);
  assert.deepEqual(cutOutputs("resnet50", "conv5_block3_1_conv"), [
    "head_pool",
    "conv5_block2_out",
  ]);
});

Deno.test("features CLI: second run is served from the cache", opts, async () => {
  const tmp = await Deno.makeTempDir({ prefix: "cxr-features-cli-" });
  const before = Deno.env.get("CXR_CACHE");
  Deno.env.set("CXR_CACHE", tmp);
  try {
    const args = [
      "--model",
      "densenet121",
      "--weights",
      "formula",
      "--limit",
      "3",
      "--quiet",
      "--data",
      join(sharedDir(), "data", "chest_xray"),
    ];
    const first = await capture(() => main(args));
    assert.equal(first.code, 0, first.out);
    assert.match(first.out, /cache hits 0, computed 3/);
    const second = await capture(() => main(args));
    assert.equal(second.code, 0, second.out);
    assert.match(second.out, /cache hits 3, computed 0/);
    assert.match(second.out, /img\/s/);
  } finally {
    if (before === undefined) Deno.env.delete("CXR_CACHE");
    else Deno.env.set("CXR_CACHE", before);
    await Deno.remove(tmp, { recursive: true });
  }
});
