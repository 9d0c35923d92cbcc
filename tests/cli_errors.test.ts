/**
 * Runtime failures of the CLIs as a user meets them (issue 19, findings 7, 9 and 10): each is
 * one line naming the file or flag and what to do, exit 1 (runtime) or 2 (usage), never
 * "error: Uncaught" and a stack unless --debug / CXR_DEBUG=1 asks for it; a failed run leaves
 * no empty run folder; one broken run folder does not stop `serve` from serving the others.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { defaultAnchors, writeSyntheticClassifier } from "../lib/inference/synthetic.ts";
import { PROJECT_ROOT, sharedDir } from "../lib/util/paths.ts";
import { makeTree, syntheticNames } from "./data_fixtures.ts";

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

function spawn(script: string, args: string[], env: Record<string, string>) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(PROJECT_ROOT, "lib", "cli", script), ...args],
    env: { CXR_DEBUG: "", ...env },
    stdout: "piped",
    stderr: "piped",
  });
}

async function cli(script: string, args: string[], env: Record<string, string>): Promise<Ran> {
  const out = await spawn(script, args, env).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** One clean error line with the prefix and the expected words; no stack, no "Uncaught". */
function assertCleanError(r: Ran, code: number, prefix: string, ...words: string[]) {
  assert.deepEqual(r.code, code, r.stderr);
  const line = r.stderr.split("\n").find((l) =>
    l.startsWith(`${prefix}: `) && words.every((w) => l.includes(w))
  );
  assert.ok(line, `a "${prefix}: " line naming ${words.join(", ")} in:\n${r.stderr}`);
  assert.ok(!/Uncaught/.test(r.stderr), r.stderr);
  assert.ok(!/^\s+at /m.test(r.stderr), `no stack trace:\n${r.stderr}`);
}

Deno.test({
  name: "cli errors: train fails in one line (data, weights, flags, outputs), no empty run folder",
  sanitizeResources: false,
  fn: async (t) => {
    const dir = await Deno.makeTempDir({ prefix: "cxr-cli-" });
    const data = join(dir, "chest_xray");
    await makeTree(data, [
      ...syntheticNames("train", 6, 6),
      ...syntheticNames("test", 2, 2, 100),
    ]);
    const outputs = join(dir, "outputs");
    const env = { CXR_OUTPUTS: outputs, CXR_CACHE: join(dir, "cache") };
    const train = (...a: string[]) =>
      cli(
        "train.ts",
        ["--model", "vgg16", "--profile", "quick", "--no-mlflow", "--quiet", ...a],
        env,
      );
    const noRunFolders = () =>
      assert.deepEqual(
        existsSync(join(outputs, "runs")) ? [...Deno.readDirSync(join(outputs, "runs"))] : [],
        [],
      );

    await t.step("missing data folder", async () => {
      const r = await train("--data", join(dir, "nowhere"));
      assertCleanError(r, 1, "train", join(dir, "nowhere"), "--data");
      noRunFolders();
    });
    await t.step("not an .h5, and an .h5 of another net", async () => {
      const bad = join(dir, "bad.h5");
      await Deno.writeTextFile(bad, "not hdf5");
      assertCleanError(await train("--data", data, "--weights", bad), 1, "train", bad);
      const other = join(sharedDir(), "reference", "densenet121_formula_notop.h5");
      if (existsSync(other)) {
        assertCleanError(
          await train("--data", data, "--weights", other),
          1,
          "train",
          other,
          "--weights",
        );
      }
      noRunFolders();
    });
    await t.step("--unfreeze-from a layer the net lacks is a usage error", async () => {
      const r = await train(
        "--data",
        data,
        "--unfreeze-from",
        "nosuchlayer",
        "--phase2-epochs",
        "1",
      );
      assertCleanError(r, 2, "train", "--unfreeze-from", "nosuchlayer", "block5_conv1");
      noRunFolders();
    });
    await t.step("outputs that cannot be written", async () => {
      const file = join(dir, "a-file");
      await Deno.writeTextFile(file, "");
      const r = await cli(
        "train.ts",
        ["--model", "vgg16", "--profile", "quick", "--no-mlflow", "--quiet", "--data", data],
        { ...env, CXR_OUTPUTS: join(file, "outputs"), CXR_WEIGHTS: "formula" },
      );
      assertCleanError(r, 1, "train", file, "CXR_OUTPUTS");
    });
    await t.step("--debug and CXR_DEBUG=1 show the stack", async () => {
      const a = await train("--data", join(dir, "nowhere"), "--debug");
      assert.deepEqual(a.code, 1);
      assert.ok(/^\s+at /m.test(a.stderr), a.stderr);
      const b = await cli("train.ts", ["--model", "vgg16", "--data", join(dir, "nowhere")], {
        ...env,
        CXR_DEBUG: "1",
      });
      assert.ok(/^\s+at /m.test(b.stderr), b.stderr);
    });
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test({
  name: "cli errors: serve's bad port, port in use and bad host are one line",
  sanitizeResources: false,
  fn: async () => {
    const env = { CXR_OUTPUTS: await Deno.makeTempDir({ prefix: "cxr-cli-" }) };
    const serve = (...a: string[]) =>
      cli("serve.ts", ["--model", "/nonexistent/x.onnx", ...a], env);
    assertCleanError(await serve("--port", "99999"), 2, "serve", "--port", "99999");
    assertCleanError(await serve("--max-buffered-mb", "0"), 2, "serve", "--max-buffered-mb");
    const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      const port = String((taken.addr as Deno.NetAddr).port);
      assertCleanError(await serve("--port", port), 1, "serve", port, "--port");
    } finally {
      taken.close();
    }
    // 203.0.113.0/24 is TEST-NET-3: never an address of this machine.
    assertCleanError(
      await serve("--host", "203.0.113.7", "--port", "0"),
      1,
      "serve",
      "203.0.113.7",
      "--host",
    );
    await Deno.remove(env.CXR_OUTPUTS, { recursive: true });
  },
});

Deno.test({
  name:
    "cli errors: serve skips an incomplete run folder with a warning and serves the rest (within --max-buffered-mb)",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const outputs = await Deno.makeTempDir({ prefix: "cxr-cli-" });
    const runs = join(outputs, "runs");
    const train = join(sharedDir(), "data", "chest_xray", "train");
    await writeSyntheticClassifier(join(runs, "good-run"), {
      net: "densenet121",
      anchors: defaultAnchors(train),
    });
    // An interrupted export: the model file is there, half written, and its metadata is not.
    const onnx = await Deno.readFile(join(runs, "good-run", "classifier.onnx"));
    await Deno.mkdir(join(runs, "broken-run"));
    await Deno.writeFile(join(runs, "broken-run", "classifier.onnx"), onnx.subarray(0, 1000));
    const child = spawn("serve.ts", ["--port", "0", "--quiet", "--max-buffered-mb", "0.5"], {
      CXR_OUTPUTS: outputs,
    }).spawn();
    const errText = new Response(child.stderr).text();
    try {
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      for (let i = 0; i < 200 && !/serving on/.test(text); i++) {
        const { value, done } = await reader.read();
        if (done) break;
        text += value;
      }
      const url = text.match(/serving on (http:\/\/[^/\s]+)/)?.[1];
      assert.ok(url, `serve did not start:\n${text}`);
      let ready: Response | null = null;
      for (let i = 0; i < 300; i++) {
        ready = await fetch(`${url}/readyz`);
        await ready.body?.cancel();
        if (ready.status === 200) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.deepEqual(ready?.status, 200);
      const models = await (await fetch(`${url}/v1/models`)).json();
      assert.deepEqual(models.models.length, 1, "the good run is served");
      // --max-buffered-mb 0.5: one 1 MB upload is more than all uploads together may hold.
      const big = await fetch(`${url}/v1/predict`, {
        method: "POST",
        body: new Uint8Array(1024 * 1024),
        headers: { "content-type": "image/png" },
      });
      assert.deepEqual(big.status, 503);
      assert.match((await big.json()).error.message, /of 524288;/);
      await reader.cancel();
    } finally {
      child.kill("SIGTERM");
      await child.status;
    }
    const stderr = await errText;
    assert.ok(/serve: warning: skipping .*broken-run/.test(stderr), stderr);
    await Deno.remove(outputs, { recursive: true });
  },
});
