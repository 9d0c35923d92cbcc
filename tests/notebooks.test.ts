/**
 * The three teaching notebooks: committed clean (no outputs, generated from one outline), their
 * cells calling the training steps themselves, and executed top to bottom on Deno's Jupyter
 * kernel with the quick profile on the shared data; the HTML exports are then opened in headless
 * Chromium (no stderr boxes, no overlapping captions), and an edited copy shows that changing
 * the unfreeze point in its cell changes what the notebook reports.
 * Set CXR_NOTEBOOK_SCREENSHOTS=DIR to keep full-page screenshots of the exports.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join, relative } from "node:path";
import { expectedNotebooks } from "../tools/make_notebooks.ts";
import { executeNotebooks, NOTEBOOKS, runNotebooks } from "../lib/cli/notebooks.ts";
import { PROJECT_ROOT, sharedDir } from "../lib/util/paths.ts";
import { checkNotebookHtml, CHROMIUM } from "./notebook_html.ts";

interface NbCell {
  cell_type: string;
  source: string[];
  outputs?: { output_type: string; data?: Record<string, unknown>; ename?: string }[];
  execution_count?: number | null;
}

Deno.test("notebooks are committed without outputs, as tools/make_notebooks.ts writes them", async () => {
  const expected = expectedNotebooks();
  assert.equal(expected.length, 3);
  for (const { path, text } of expected) {
    const current = await Deno.readTextFile(path);
    assert.equal(current, text, `${path} is stale: run deno run -A tools/make_notebooks.ts`);
    const nb = JSON.parse(current) as {
      cells: NbCell[];
      metadata: { kernelspec: { name: string } };
    };
    assert.equal(nb.metadata.kernelspec.name, "deno");
    for (const cell of nb.cells.filter((c) => c.cell_type === "code")) {
      assert.deepEqual(cell.outputs, [], `${path}: a code cell has outputs`);
      assert.equal(cell.execution_count, null, `${path}: a code cell has an execution count`);
    }
  }
});

async function hasNbclient(): Promise<boolean> {
  try {
    const out = await new Deno.Command("/usr/bin/python3", {
      args: ["-c", "import nbclient"],
      stdout: "null",
      stderr: "null",
    }).output();
    return out.success;
  } catch {
    return false;
  }
}

/** The training steps each notebook's cells must call themselves (lib/training/steps.ts). */
const STEP_CALLS = [
  "cxr.buildNet(",
  "cxr.netSummary(",
  "cxr.chooseCut(",
  "cxr.loadData(",
  "cxr.computeActivations(",
  "cxr.buildHead(",
  "cxr.trainingSetup(",
  "cxr.fitPhase1(",
  "cxr.predictSplit(",
  "cxr.chooseValThreshold(",
];

/** What trainRun chains (the threshold is chosen by the same chooseThreshold in evaluateRun). */
const TRAIN_RUN_STEPS = [
  "loadData",
  "buildNet",
  "chooseCut",
  "computeActivations",
  "buildHead",
  "trainingSetup",
  "fitPhase1",
  "buildPhase2Model",
  "fitPhase2",
  "predictSplit",
  "finishRun",
];

function codeCells(text: string): string[] {
  const nb = JSON.parse(text) as { cells: NbCell[] };
  return nb.cells.filter((c) => c.cell_type === "code").map((c) => c.source.join(""));
}

Deno.test("notebook cells call the training steps, the same functions cxr.train chains", async () => {
  // trainRun (cxr.train, deno task train) is built from the same step functions.
  const runSource = await Deno.readTextFile(join(PROJECT_ROOT, "lib", "training", "run.ts"));
  for (const fn of TRAIN_RUN_STEPS) {
    assert.match(runSource, new RegExp(`\\b${fn}\\(`), `trainRun does not call ${fn}`);
  }
  for (const { path, text } of expectedNotebooks()) {
    const cells = codeCells(text);
    const all = cells.join("\n");
    for (const call of STEP_CALLS) assert.ok(all.includes(call), `${path}: no cell calls ${call}`);
    assert.ok(!all.includes("cxr.train("), `${path}: training must be in cells, not cxr.train`);
    // One step per cell, so that a reader can re-run from any of them.
    const fitCells = cells.filter((c) =>
      /cxr\.fitPhase[12]\(/.test(c) && !c.includes("progress: false")
    );
    assert.ok(fitCells.every((c) => !c.includes("cxr.computeActivations(")), path);
    // Each training cell ends with validation sensitivity, specificity and threshold.
    for (const c of fitCells) {
      assert.match(c, /cxr\.fitView\(/, `${path}: a fit cell without fitView`);
    }
    if (path.endsWith("ResNet50.ipynb") || path.endsWith("DenseNet121.ipynb")) {
      assert.match(all, /cxr\.fitPhase2\(/, `${path}: no phase 2 cell`);
    }
    assert.match(text, /## \d+\. Try this/, `${path}: no "Try this" section`);
  }
});

// CI sets CXR_REQUIRE_NOTEBOOKS=1 so a missing Jupyter fails instead of skipping.
const required = Deno.env.get("CXR_REQUIRE_NOTEBOOKS") === "1";
const available = await hasNbclient();

Deno.test({
  name: "the three notebooks run top to bottom (quick profile, formula weights, shared data)",
  ignore: !available && !required,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    assert.ok(available, "python3-nbclient is required (CXR_REQUIRE_NOTEBOOKS=1)");
    const tmp = await Deno.makeTempDir({ prefix: "cxr-nb-" });
    const saved: Record<string, string | undefined> = {};
    const env: Record<string, string> = {
      CXR_WEIGHTS: "formula",
      CXR_DATA: join(sharedDir(), "data", "chest_xray"),
      CXR_OUTPUTS: join(tmp, "outputs"),
      CXR_PROFILE: "quick",
      MLFLOW_TRACKING_URI: "",
    };
    for (const [k, v] of Object.entries(env)) {
      saved[k] = Deno.env.get(k);
      Deno.env.set(k, v);
    }
    try {
      const out = join(tmp, "executed");
      const code = await runNotebooks(["--profile", "quick", "--out", out, "--no-html"]);
      assert.equal(code, 0, "a notebook cell failed (see the output above)");
      for (const name of NOTEBOOKS) {
        const nb = JSON.parse(await Deno.readTextFile(join(out, `${name}.ipynb`))) as {
          cells: NbCell[];
        };
        const outputs = nb.cells.flatMap((c) => c.outputs ?? []);
        assert.ok(!outputs.some((o) => o.output_type === "error"), `${name}: error output`);
        const mimes = new Set(outputs.flatMap((o) => Object.keys(o.data ?? {})));
        for (const mime of ["application/vnd.vegalite.v5+json", "image/svg+xml", "text/html"]) {
          assert.ok(mimes.has(mime), `${name}: no ${mime} output (got ${[...mimes].join(", ")})`);
        }
        // The example X-rays and Grad-CAM overlays are inline PNGs inside HTML grids.
        const htmls = outputs.map((o) => String(o.data?.["text/html"] ?? "")).join("\n");
        assert.match(htmls, /data:image\/png;base64,/, `${name}: no inline image`);
      }
      // Each notebook logged its run to the server-less MLflow store.
      const mlruns = join(tmp, "outputs", "mlruns");
      const experiments = [...Deno.readDirSync(mlruns)].filter((e) =>
        e.isDirectory && e.name !== ".trash" && e.name !== "0"
      );
      assert.ok(experiments.length >= 1, "no MLflow experiment written");
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) Deno.env.delete(k);
        else Deno.env.set(k, v);
      }
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    }
  },
});
