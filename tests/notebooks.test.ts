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
import { basename, join, relative } from "node:path";
import { expectedNotebooks } from "../tools/make_notebooks.ts";
import { executeNotebooks, NOTEBOOKS, runNotebooks } from "../lib/cli/notebooks.ts";
import { PROJECT_ROOT, sharedDir } from "../lib/util/paths.ts";
import { checkNotebookHtml, CHROMIUM } from "./notebook_html.ts";

interface NbCell {
  cell_type: string;
  source: string[];
  outputs?: {
    output_type: string;
    data?: Record<string, unknown>;
    ename?: string;
    name?: string;
    text?: string | string[];
  }[];
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
  "cxr.splitPredictions(",
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
  "splitPredictions",
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

function cellOutputsText(cell: NbCell): string {
  return (cell.outputs ?? []).map((o) => {
    const plain = o.data?.["text/plain"] ?? o.text ?? "";
    return Array.isArray(plain) ? plain.join("") : String(plain);
  }).join("\n");
}

/** The "trainable" rows of the notebook's netSummary tables: [layers, parameters] each. */
function trainableCounts(nb: { cells: NbCell[] }): [number, number][] {
  const text = nb.cells.map(cellOutputsText).join("\n");
  const rows = [...text.matchAll(/^trainable\s+([\d,]+)\s+([\d,]+)/gm)];
  assert.ok(rows.length > 0, "no netSummary output");
  const n = (s: string) => Number(s.replace(/,/g, ""));
  return rows.map((m) => [n(m[1]), n(m[2])]);
}

Deno.test({
  name: "the three notebooks run top to bottom (quick profile, formula weights, shared data)",
  ignore: !available && !required,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    assert.ok(available, "python3-nbclient is required (CXR_REQUIRE_NOTEBOOKS=1)");
    const tmp = await Deno.makeTempDir({ prefix: "cxr-nb-" });
    const saved: Record<string, string | undefined> = {};
    const env: Record<string, string> = {
      CXR_WEIGHTS: "formula",
      // Relative, as a user would type it: the kernels run in notebooks/, so this only works
      // when they resolve it from the launch directory as the CLI does.
      CXR_DATA: relative(Deno.cwd(), join(sharedDir(), "data", "chest_xray")),
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
      const code = await runNotebooks(["--profile", "quick", "--out", out]);
      assert.equal(code, 0, "a notebook cell failed (see the output above)");
      const executed: Record<string, { cells: NbCell[] }> = {};
      for (const name of NOTEBOOKS) {
        const nb = JSON.parse(await Deno.readTextFile(join(out, `${name}.ipynb`))) as {
          cells: NbCell[];
        };
        executed[name] = nb;
        const outputs = nb.cells.flatMap((c) => c.outputs ?? []);
        assert.ok(!outputs.some((o) => o.output_type === "error"), `${name}: error output`);
        assert.ok(
          !outputs.some((o) => o.output_type === "stream" && o.name === "stderr"),
          `${name}: something was written to stderr`,
        );
        const mimes = new Set(outputs.flatMap((o) => Object.keys(o.data ?? {})));
        for (const mime of ["application/vnd.vegalite.v5+json", "image/svg+xml", "text/html"]) {
          assert.ok(mimes.has(mime), `${name}: no ${mime} output (got ${[...mimes].join(", ")})`);
        }
        // The example X-rays and Grad-CAM overlays are inline PNGs inside HTML grids.
        const htmls = outputs.map((o) => String(o.data?.["text/html"] ?? "")).join("\n");
        assert.match(htmls, /data:image\/png;base64,/, `${name}: no inline image`);
        // Every fit cell ends with the restored epoch and validation sens./spec./threshold.
        const fits = nb.cells.filter((c) =>
          c.source.join("").includes("cxr.fitView(") && (c.outputs ?? []).length > 0
        );
        assert.ok(fits.length >= 1, `${name}: no executed fit cell`);
        for (const c of fits) {
          const text = cellOutputsText(c);
          assert.match(text, /best epoch \*\*\d+\*\* \(val_auc \d\.\d+\) restored/, name);
          for (const w of ["threshold", "sensitivity", "specificity"]) {
            assert.match(text, new RegExp(w));
          }
        }
        // The threshold chosen in its cell is the one the saved run's evaluation applies.
        const all = nb.cells.map(cellOutputsText).join("\n");
        const chosen = all.match(/^(\S+) \(chosen\)\s+(\d\.\d+)/m);
        assert.ok(chosen, `${name}: no threshold table`);
        assert.match(
          all,
          new RegExp(`\\*\\*Threshold\\*\\* ${chosen[2]} \\(${chosen[1]}\\)`),
          name,
        );
        assert.match(all, /Validation, same images, same features/, `${name}: try-this cell`);
      }
      // Each notebook logged its run to the server-less MLflow store.
      const mlruns = join(tmp, "outputs", "mlruns");
      const experiments = [...Deno.readDirSync(mlruns)].filter((e) =>
        e.isDirectory && e.name !== ".trash" && e.name !== "0"
      );
      assert.ok(experiments.length >= 1, "no MLflow experiment written");
      const index = await Deno.readTextFile(join(out, "index.html"));
      for (const name of NOTEBOOKS) assert.match(index, new RegExp(`href="${name}.html"`));

      await t.step({
        name: "the HTML exports in headless Chromium: no stderr boxes, no overlapping captions",
        ignore: !existsSync(CHROMIUM),
        fn: async () => {
          const shots = Deno.env.get("CXR_NOTEBOOK_SCREENSHOTS");
          if (shots) await Deno.mkdir(shots, { recursive: true });
          for (const name of NOTEBOOKS) {
            const page = await checkNotebookHtml(
              join(out, `${name}.html`),
              shots ? join(shots, `${name}.png`) : undefined,
            );
            assert.deepEqual(page.stderrBoxes, [], `${name}: stderr output in the page`);
            assert.deepEqual(page.captionProblems, [], `${name}: captions`);
            // 8 example X-rays + the Grad-CAM grid.
            assert.ok(page.figures >= 10, `${name}: ${page.figures} figures`);
            assert.match(page.text, /restored/, `${name}: no restored epoch in the page`);
          }
        },
      });

      await t.step(
        "an edited unfreeze point, re-run in the same kernel, changes the counts",
        async () => {
          // What a reader does: run down to the summary, change the unfreeze point in the recipe
          // cell, and re-run from there without restarting the kernel. nbclient runs cells once,
          // so the copy lists the re-run cells a second time, the recipe edited.
          const original = JSON.parse(
            await Deno.readTextFile(join(PROJECT_ROOT, "notebooks", "DenseNet121.ipynb")),
          ) as { cells: NbCell[] };
          const cells = original.cells;
          const recipe = cells.findIndex((c) => c.source.join("").includes("cxr.trainingConfig("));
          const summary = cells.findIndex((c) => c.source.join("").includes("cxr.netSummary("));
          assert.ok(recipe > 0 && summary > recipe);
          const from = '"conv5_block16_0_bn"';
          assert.ok(cells[recipe].source.join("").includes(from), "the recipe names the layer");
          const edited = { ...cells[recipe], id: "edited-recipe" };
          edited.source = edited.source.map((l) => l.replace(from, '"conv5_block15_0_bn"'));
          const rerun = cells.slice(recipe + 1, summary + 1).map((c, k) => ({
            ...c,
            id: `rerun-${k}`,
          }));
          // Beside the real notebooks, so that its `../lib` import resolves.
          const beside = join(PROJECT_ROOT, "notebooks", `.edited-${crypto.randomUUID()}.ipynb`);
          await Deno.writeTextFile(
            beside,
            JSON.stringify({
              ...original,
              cells: [...cells.slice(0, summary + 1), edited, ...rerun],
            }),
          );
          try {
            const res = await executeNotebooks([beside], {
              out: join(tmp, "edited"),
              verbose: false,
            });
            assert.equal(res.code, 0, "the edited notebook failed");
          } finally {
            await Deno.remove(beside).catch(() => {});
          }
          const after = JSON.parse(
            await Deno.readTextFile(join(tmp, "edited", basename(beside))),
          ) as { cells: NbCell[] };
          const counts = trainableCounts(after);
          assert.equal(counts.length, 2, "two summaries: before and after the edit");
          const [[layers0, params0], [layers1, params1]] = counts;
          assert.deepEqual([layers0, params0], trainableCounts(executed.DenseNet121)[0]);
          assert.ok(layers1 > layers0, `trainable layers ${layers0} -> ${layers1}`);
          assert.ok(params1 > params0, `trainable parameters ${params0} -> ${params1}`);
          const text = after.cells.map(cellOutputsText).join("\n");
          assert.match(text, /conv5_block14_concat/, "the frontier moved with the cut");
        },
      );
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) Deno.env.delete(k);
        else Deno.env.set(k, v);
      }
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    }
  },
});
