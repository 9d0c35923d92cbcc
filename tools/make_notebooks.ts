/**
 * Writes notebooks/{VGG16,ResNet50,DenseNet121}.ipynb from one outline, so the three tell the
 * same story with each net's own text, and are committed without outputs.
 *
 *   deno run --allow-read --allow-write tools/make_notebooks.ts          write them
 *   deno run --allow-read tools/make_notebooks.ts --check                 exit 1 if stale
 */
import { join } from "node:path";
import { PROJECT_ROOT } from "../lib/util/paths.ts";
import { PREPROCESSING } from "../lib/models/preprocess.ts";

const CAFFE_MEAN = PREPROCESSING.caffe.mean.join(", ");
const TORCH_MEAN = PREPROCESSING.torch.mean.join(", ");
const TORCH_STD = PREPROCESSING.torch.std.join(", ");

interface NetText {
  net: "vgg16" | "resnet50" | "densenet121";
  title: string;
  intro: string;
  preprocessing: string;
  architecture: string;
  phase2: string | null;
  closing: string;
}

const NETS: NetText[] = [
  {
    net: "vgg16",
    title: "VGG16",
    intro: "VGG16 (Simonyan & Zisserman, 2014) stacks 3x3 convolutions and max-pooling: 13 conv " +
      "layers in five blocks. It is the original project's **baseline**: its ImageNet base stays " +
      "frozen and only a small head learns to tell NORMAL from PNEUMONIA.",
    preprocessing:
      "VGG16 uses Keras' **'caffe'** preprocessing: RGB becomes BGR and the ImageNet mean of " +
      `each channel is subtracted (${CAFFE_MEAN}); there is no scaling. The X-rays are ` +
      "grey, so the three channels carry the same picture shifted by different means.",
    architecture:
      "14.7 million parameters in the convolutional base (`include_top=False`), all frozen. The " +
      "head is global average pooling, dropout and one sigmoid unit. Because nothing in the base " +
      "learns, the base runs **once per image** in ONNX Runtime and its pooled output is cached " +
      "on disk; training then only touches 513 weights.",
    phase2: null,
    closing:
      "VGG16 is the heaviest of the three for the least accuracy: 15.5 GFLOPs per image for a " +
      "frozen feature extractor. It is the baseline the fine-tuned nets must beat.",
  },
  {
    net: "resnet50",
    title: "ResNet50",
    intro:
      "ResNet50 (He et al., 2015) adds identity shortcuts around bottleneck blocks so that 50 " +
      "layers still train. The original project trains a head on the frozen base (**phase 1**), " +
      "then unfreezes the last layers and fine-tunes them with a lower learning rate " +
      "(**phase 2**).",
    preprocessing:
      "ResNet50 uses Keras' **'caffe'** preprocessing, like VGG16: RGB to BGR, minus the ImageNet " +
      "channel means, no scaling.",
    architecture:
      "23.6 million parameters in the base. Phase 1 trains the head only. Phase 2 unfreezes " +
      "the layers from the cut shown below to the output: the frozen layers before it still run " +
      "once per image in ONNX Runtime (their output at the cut is cached), and tfjs trains the " +
      "unfrozen tail and the head on those activations.",
    phase2:
      "Phase 2 starts from the phase-1 head and the ImageNet (here: chosen) weights of the tail, " +
      "with a learning rate ten times lower so the pretrained filters move gently. BatchNorm " +
      "layers in the tail keep their moving statistics (inference mode), as Keras recommends " +
      "for fine-tuning.",
    closing:
      "The original project ranked ResNet50 last on a test of a few images; with so few images " +
      "no ranking is reliable. Compare the three nets on the same split with `deno task report`.",
  },
  {
    net: "densenet121",
    title: "DenseNet121",
    intro:
      "DenseNet121 (Huang et al., 2017) concatenates every layer's output with all earlier ones " +
      "inside a dense block: few parameters, much feature reuse, a favourite in chest X-ray work " +
      "(CheXNet is a DenseNet121). The original project fine-tuned its last layers and got its " +
      "best results with it.",
    preprocessing:
      "DenseNet121 uses Keras' **'torch'** preprocessing: pixels are scaled to 0..1, then each " +
      `channel is standardised with the ImageNet mean (${TORCH_MEAN}) and standard ` +
      `deviation (${TORCH_STD}).`,
    architecture:
      "7.0 million parameters in the base. Phase 1 trains the head on frozen features; phase 2 " +
      "unfreezes the last dense layer of block 5 and the final BatchNorm (from the cut below), " +
      "trained by tfjs on the cached activations of the frozen layers before it.",
    phase2:
      "Phase 2 fine-tunes the last dense layer of block 5 with a lower learning rate, starting " +
      "from the phase-1 head. Only layers after the cut are updated; the cached activations at " +
      "the cut make each epoch cost seconds.",
    closing:
      "DenseNet121 was the original project's best model, on a test of a few images. Whether it " +
      "stays best on a larger, patient-disjoint evaluation is what this toolkit lets you check.",
  },
];

type Cell = { cell_type: "markdown" | "code"; source: string };

const md = (source: string): Cell => ({ cell_type: "markdown", source });
const code = (source: string): Cell => ({ cell_type: "code", source });

function cells(t: NetText): Cell[] {
  const out: Cell[] = [
    md(
      `# ${t.title}: pneumonia on chest X-rays by transfer learning\n\n${t.intro}\n\n` +
        "This notebook runs the whole protocol with the `cxr` library: the data and its " +
        "imbalance, preprocessing, the architecture, training, a clinical evaluation with " +
        "confidence intervals, Grad-CAM, and MLflow tracking. The heavy lifting is in `lib/`; " +
        "cells stay short.\n\n" +
        "> Research and teaching material, **not a diagnostic device**.",
    ),
    md(
      "## Settings\n\n" +
        "Change these, or set `CXR_PROFILE`, `CXR_DATA`, `CXR_WEIGHTS`, `MLFLOW_TRACKING_URI` " +
        "before starting Jupyter (the environment wins, so `deno task notebooks --profile full` " +
        "runs this notebook unchanged).\n\n" +
        "- `profile`: `quick` (a small stratified subset and few epochs, about 3 minutes on a " +
        "2-core laptop) or `full` (all 5,216 training images, as `deno task train-all`).\n" +
        "- `weights`: `imagenet` uses Keras' ImageNet files (downloaded once, or put in " +
        "`~/.keras/models`); `formula` and `none` are for machines without them and are " +
        "**not ImageNet**.\n" +
        '- `mlflow`: `""` logs to the file store `outputs/mlruns`, a URL logs to a server, ' +
        '`"off"` disables tracking.',
    ),
    code(
      'import * as cxr from "../lib/notebook/mod.ts";\n\n' +
        `const settings = cxr.notebookSettings("${t.net}", {\n` +
        '  profile: "quick", // "quick" | "full"\n' +
        '  weights: "imagenet", // "imagenet" | "formula" | "none" | "path/to/weights.h5"\n' +
        '  mlflow: "", // "" (outputs/mlruns) | "http://127.0.0.1:5000" | "off"\n' +
        '  protocol: "patient", // "patient" (honest) | "seed" (the original swap of val/test)\n' +
        '  intensity: "off", // "off" | "equalize" | "clahe": normalisation, also when served\n' +
        "  augmentViews: 0, // K augmented views per training image, cached (0: none)\n" +
        "});\n" +
        "await cxr.show(cxr.settingsView(settings));",
    ),
    md(
      "## 1. The data\n\n" +
        "Kermany et al.'s chest X-rays (Kaggle layout `chest_xray/{train,val,test}/{NORMAL," +
        "PNEUMONIA}`). Two things shape everything below:\n\n" +
        "- **Imbalance**: PNEUMONIA images outnumber NORMAL ones (the counts are below). A model " +
        "that always says PNEUMONIA scores the PNEUMONIA share as accuracy, so we report " +
        "sensitivity and specificity too.\n" +
        "- **Patients**: many patients have several images (the id is in the file name). The " +
        "`patient` protocol carves a patient-disjoint validation set out of train so that no " +
        "patient is on both sides; the `seed` protocol mirrors the original project (official " +
        "test used as validation, the official val folder as test).",
    ),
    code(
      "const data = await cxr.exploreData(settings);\nawait cxr.show(...data.view);",
    ),
    code("await cxr.show(await cxr.exampleImages(data.splits.train));"),
    md(`## 2. Preprocessing\n\n${t.preprocessing}`),
    code("await cxr.show(await cxr.preprocessingView(settings.net, data.splits.train[0]));"),
    md(`## 3. The architecture\n\n${t.architecture}`),
    code(
      "const config = cxr.trainingConfig(settings);\n" +
        "await cxr.show(\n" +
        "  ...cxr.architectureView(settings.net, {\n" +
        "    unfreezeFrom: config.phase2?.unfreezeFrom ?? null,\n" +
        "    dropout: config.dropout,\n" +
        "  }),\n" +
        "  cxr.configView(config),\n" +
        ");",
    ),
    md(
      "## 4. Phase 1: a head on the frozen base\n\n" +
        "The frozen base runs once per image in ONNX Runtime; its outputs are cached under " +
        "`outputs/cache` (a second run reads them back). tfjs then trains the head for a few " +
        "epochs with class weights against the imbalance, keeping the epoch with the best " +
        "validation AUC. Progress shows below; the run is resumable: re-running this cell after " +
        "an interruption continues from the last finished epoch.",
    ),
    code(
      "const phase1 = await cxr.train(config, { untilPhase: 1 });\n" +
        "await cxr.show(...await cxr.trainingCurvesView(phase1.runDir));",
    ),
  ];
  if (t.phase2) {
    out.push(
      md(`## 5. Phase 2: fine-tuning the last layers\n\n${t.phase2}`),
      code(
        "const run = await cxr.train(config);\n" +
          "await cxr.show(...await cxr.trainingCurvesView(run.runDir));",
      ),
    );
  } else {
    out.push(
      md(
        "VGG16 is the baseline: no phase 2, the base stays frozen. The run is complete; the " +
          "next cell just picks it up.",
      ),
      code("const run = await cxr.train(config);"),
    );
  }
  const n = t.phase2 ? 6 : 5;
  out.push(
    md(
      `## ${n}. Clinical evaluation\n\n` +
        "The decision threshold is chosen on **validation** (default: the highest specificity " +
        "that keeps sensitivity ≥ 0.95, since a missed pneumonia costs more than a false alarm) " +
        "and then applied unchanged to test. Every figure has a 95% bootstrap interval " +
        "(resampling whole patients). Validation figures are **not** test figures: validation " +
        "chose the stopping epoch and the threshold, and its images come from the same source " +
        "as the training images.",
    ),
    code("await cxr.show(...await cxr.evaluationView(run.runDir));"),
    md(
      `## ${n + 1}. Grad-CAM: where does the net look?\n\n` +
        "Grad-CAM weighs the last convolutional feature maps by the gradient of the score, " +
        "showing which regions pushed the decision. Below: the most confident right and wrong " +
        "cases of each class. A heatmap on the lungs is reassuring; one on text markers, " +
        "borders or devices is a warning sign of shortcut learning.",
    ),
    code("await cxr.show(await cxr.gradcamView(run.runDir));"),
    md(
      `## ${n + 2}. MLflow\n\n` +
        "Every run logs its parameters, per-epoch metrics, charts, evaluation and the ONNX " +
        "classifier to MLflow (a server when `MLFLOW_TRACKING_URI` is set, else the file store " +
        "that `mlflow ui` reads). If the server is down, records wait in a local spool; " +
        "`deno task mlflow:sync` replays them.",
    ),
    code("await cxr.show(await cxr.mlflowView(run.runDir));"),
    md(`## ${n + 3}. Reading the results`),
    code("await cxr.show(await cxr.readingView(run.runDir));"),
    md(
      `${t.closing}\n\n` +
        "Next: `deno task report` compares the three nets; `deno task serve --run <run-id>` " +
        "puts this classifier behind the HTTP API and the clinical-test web page.",
    ),
  );
  return out;
}

function notebookJson(t: NetText): string {
  const nb = {
    cells: cells(t).map((c) => ({
      cell_type: c.cell_type,
      metadata: {},
      source: c.source.split(/(?<=\n)/),
      ...(c.cell_type === "code" ? { execution_count: null, outputs: [] } : {}),
    })),
    metadata: {
      kernelspec: { display_name: "Deno", language: "typescript", name: "deno" },
      language_info: {
        codemirror_mode: "typescript",
        file_extension: ".ts",
        mimetype: "text/x.typescript",
        name: "typescript",
        nbconvert_exporter: "script",
        pygments_lexer: "typescript",
        version: "5.9",
      },
    },
    nbformat: 4,
    nbformat_minor: 5,
  };
  // nbformat 4.5 wants cell ids; stable ones keep the files diff-free.
  nb.cells.forEach((c, i) => (c as Record<string, unknown>).id = `${t.net}-${i}`);
  return JSON.stringify(nb, null, 1) + "\n";
}

/** Path and expected content of each notebook. */
export function expectedNotebooks(): { path: string; text: string }[] {
  return NETS.map((t) => ({
    path: join(PROJECT_ROOT, "notebooks", `${t.title}.ipynb`),
    text: notebookJson(t),
  }));
}

if (import.meta.main) {
  const check = Deno.args.includes("--check");
  let stale = 0;
  for (const { path, text } of expectedNotebooks()) {
    let current = "";
    try {
      current = await Deno.readTextFile(path);
    } catch { /* missing */ }
    if (current === text) continue;
    if (check) {
      console.error(`${path} differs from tools/make_notebooks.ts (run it to regenerate)`);
      stale++;
    } else {
      await Deno.writeTextFile(path, text);
      console.log(`wrote ${path}`);
    }
  }
  Deno.exit(stale ? 1 : 0);
}
