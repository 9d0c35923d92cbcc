/**
 * What `deno task notebooks` sets up around the kernels, without running one: the kernelspec
 * (stable launcher, written once), the index page, relative CXR_* paths inside a kernel, and
 * the restored-epoch marks of the training curves.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { kernelArgv, kernelSpecJson, writeIndex, writeKernelSpec } from "../lib/cli/notebooks.ts";
import { PROJECT_ROOT, resolveUserPath } from "../lib/util/paths.ts";
import { restoredEpochs } from "../lib/training/metrics.ts";
import { trainingCurves } from "../lib/charts/specs.ts";

Deno.test("kernelspec: a Deno from npx's cache is launched through npx, others directly", () => {
  const npx = kernelArgv("/root/.npm/_npx/7a40be787520bede/node_modules/deno/deno", "2.9.6");
  assert.deepEqual(npx, [
    "npx",
    "-y",
    "deno@2.9.6",
    "jupyter",
    "--kernel",
    "--conn",
    "{connection_file}",
  ]);
  assert.ok(!npx.some((a) => a.includes("_npx")), "the spec must not point into npx's cache");
  assert.deepEqual(kernelArgv("/usr/local/bin/deno", "2.9.6").slice(0, 2), [
    "/usr/local/bin/deno",
    "jupyter",
  ]);
  const spec = JSON.parse(kernelSpecJson(npx));
  assert.equal(spec.language, "typescript");
  assert.deepEqual(spec.argv, npx);
});

Deno.test("kernelspec: written once, rewritten only when it changes", async () => {
  const root = await Deno.makeTempDir({ prefix: "cxr-kernel-" });
  try {
    const path = join(root, "kernels", "deno", "kernel.json");
    assert.equal(await writeKernelSpec(root, kernelSpecJson(["a", "{connection_file}"])), true);
    const first = (await Deno.stat(path)).mtime;
    assert.equal(await writeKernelSpec(root, kernelSpecJson(["a", "{connection_file}"])), false);
    assert.deepEqual((await Deno.stat(path)).mtime, first);
    assert.equal(await writeKernelSpec(root, kernelSpecJson(["b", "{connection_file}"])), true);
    assert.deepEqual(JSON.parse(await Deno.readTextFile(path)).argv, ["b", "{connection_file}"]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("index page links each executed notebook and says which failed", async () => {
  const out = await Deno.makeTempDir({ prefix: "cxr-index-" });
  try {
    const path = await writeIndex(out, [
      { name: "VGG16", status: "ok", seconds: 61.2, ipynb: "VGG16.ipynb", html: "VGG16.html" },
      { name: "ResNet50", status: "FAILED", seconds: 12, ipynb: "ResNet50.ipynb" },
    ]);
    const page = await Deno.readTextFile(path);
    assert.match(page, /<a href="VGG16.html">VGG16<\/a>/);
    assert.match(page, /<a href="ResNet50.ipynb">/);
    assert.match(page, /class="failed">FAILED/);
    assert.match(page, /not a diagnostic device/);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("relative paths: the working directory outside a kernel; launch dir, then repo root inside", async () => {
  const launch = await Deno.makeTempDir({ prefix: "cxr-launch-" });
  try {
    await Deno.mkdir(join(launch, "mydata"));
    // CLI: relative to the working directory, as always.
    assert.equal(
      resolveUserPath("mydata", { kernel: false, launchDir: launch }),
      join(Deno.cwd(), "mydata"),
    );
    // Kernel: found in the directory Jupyter was launched from.
    assert.equal(
      resolveUserPath("mydata", { kernel: true, launchDir: launch }),
      join(launch, "mydata"),
    );
    // Kernel: not there, but in the repository (the kernel itself runs in notebooks/).
    assert.equal(
      resolveUserPath("tools/run_notebooks.py", { kernel: true, launchDir: launch }),
      join(PROJECT_ROOT, "tools", "run_notebooks.py"),
    );
    // Nowhere yet (an outputs folder to create): the repository root, where `deno task` puts it.
    assert.equal(
      resolveUserPath("not-yet/out", { kernel: true, launchDir: launch }),
      join(PROJECT_ROOT, "not-yet", "out"),
    );
    assert.equal(resolveUserPath("/abs/x", { kernel: true, launchDir: launch }), "/abs/x");
  } finally {
    await Deno.remove(launch, { recursive: true });
  }
});

Deno.test("restored epochs: the best monitored epoch of each phase, marked on the curves", () => {
  const rec = (epoch: number, phase: 1 | 2, val_auc: number, val_loss: number) => ({
    epoch,
    phase,
    loss: 0.5,
    accuracy: 0.8,
    auc: 0.8,
    val_loss,
    val_accuracy: 0.8,
    val_auc,
  });
  const history = [
    rec(1, 1, 0.70, 0.60),
    rec(2, 1, 0.85, 0.50),
    rec(3, 1, 0.85, 0.40), // ties do not improve (EarlyStopping's strict rule)
    rec(4, 1, NaN, 0.30),
    rec(5, 2, 0.90, 0.45),
    rec(6, 2, 0.88, 0.35),
  ];
  assert.deepEqual(
    restoredEpochs(history, { monitor: "val_auc", restoreBest: true }).map((r) => r.epoch),
    [2, 5],
  );
  assert.deepEqual(
    restoredEpochs(history, { monitor: "val_loss", restoreBest: true }).map((r) => r.epoch),
    [4, 6],
  );
  assert.deepEqual(restoredEpochs(history, { monitor: "val_auc", restoreBest: false }), []);
  const spec = JSON.stringify(trainingCurves(history, { restored: [2, 5] }));
  assert.match(spec, /"restored"/);
  assert.doesNotMatch(JSON.stringify(trainingCurves(history)), /"restored"/);
});
