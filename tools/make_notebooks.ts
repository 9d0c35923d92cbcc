/**
 * Writes notebooks/{VGG16,ResNet50,DenseNet121}.ipynb from one outline, so the three tell the
 * same story with each net's own text, and are committed without outputs.
 *
 *   deno run --allow-read --allow-write tools/make_notebooks.ts          write them
 *   deno run --allow-read tools/make_notebooks.ts --check                 exit 1 if stale
 */
import { join } from "node:path";
import { PROJECT_ROOT } from "../lib/util/paths.ts";
import { getNetSpec } from "../lib/models/registry.ts";
import { withHead } from "../lib/models/head.ts";
import { type Net, netSummary } from "../lib/training/steps.ts";
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
  /** The recipe's phase-2 unfreeze point (the net's default); null: no phase 2. */
  unfreezeFrom: string | null;
  /** The "Try this" experiments (given trainable parameter counts): what to change, what to see. */
  tryThis: (trainable: (unfreezeFrom: string | null) => string) => string[];
  closing: string;
}

const THRESHOLD_EXPERIMENT =
  "**Change the threshold rule.** In the threshold cell, replace `config.thresholdMethod` with " +
  '`"youden"` (or `"0.5"`) and re-run that cell only: nothing retrains. The red line moves ' +
  "along the sweep; read what sensitivity gives up for specificity (the table lists all three " +
  "rules on the same predictions). Which error would you rather make with a child's X-ray?";

const CLASS_WEIGHT_EXPERIMENT =
  '**Drop the class weights.** Set `classWeight: "none"` in the recipe and re-run from there ' +
  "(or read the cell below, which trains that head next to the weighted one). Class weights " +
  "exist so that the head does not simply lean to the majority class: compare sensitivity and " +
  "specificity at the fixed 0.5 cut, then at the threshold chosen on validation, which moves to " +
  "make up for the imbalance either way. Does the ROC-AUC (which ignores the threshold) change?";

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
    unfreezeFrom: null,
    tryThis: (trainable) => [
      "**Fine-tune block 5**, as the original did for the other two nets: in the recipe set " +
      '`phase2: { unfreezeFrom: "block5_conv3", epochs: 2 }` and re-run from there. The ' +
      `summary shows ${trainable("block5_conv3")} trainable parameters instead of the head's ` +
      `${trainable(null)}, the cached ` +
      "frontier becomes block5_conv2's 14×14×512 map, and each phase-2 epoch now runs a " +
      "convolution over it. Does validation AUC beat the frozen baseline?",
      CLASS_WEIGHT_EXPERIMENT,
      THRESHOLD_EXPERIMENT,
    ],
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
    unfreezeFrom: "conv5_block3_3_conv",
    tryThis: (trainable) => [
      "**Unfreeze the whole last bottleneck block.** In the recipe set " +
      '`unfreezeFrom: "conv5_block3_1_conv"` and re-run from there. Trainable parameters go ' +
      `from ${trainable("conv5_block3_3_conv")} to ${trainable("conv5_block3_1_conv")}, and ` +
      "the frontier becomes the block's input alone " +
      "(conv5_block2_out feeds both the block and its shortcut). Watch phase 2's time per " +
      "epoch and the gap between the training and validation curves: more freedom can mean " +
      "more overfitting on a small training set.",
      CLASS_WEIGHT_EXPERIMENT,
      THRESHOLD_EXPERIMENT,
    ],
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
    unfreezeFrom: "conv5_block16_0_bn",
    tryThis: (trainable) => [
      '**Unfreeze deeper.** In the recipe set `unfreezeFrom: "conv5_block15_0_bn"` (one ' +
      "dense layer earlier) and re-run from there. Section 5 shows the trainable parameters " +
      `roughly double (${trainable("conv5_block16_0_bn")} → ${trainable("conv5_block15_0_bn")}) ` +
      "and the frontier move to conv5_block14_concat; the " +
      "activations at the new cut are computed once, then cached. Does validation AUC " +
      "improve, or only the training curve?",
      CLASS_WEIGHT_EXPERIMENT,
      THRESHOLD_EXPERIMENT,
    ],
    closing:
      "DenseNet121 was the original project's best model, on a test of a few images. Whether it " +
      "stays best on a larger, patient-disjoint evaluation is what this toolkit lets you check.",
  },
];

/** "169,153": trainable parameters of `net` + head when unfreezing from a layer (null: head). */
function trainableCount(net: NetText["net"]): (unfreezeFrom: string | null) => string {
  const base = getNetSpec(net);
  const spec = { name: net, base, full: withHead(base), weights: null } as unknown as Net;
  return (from) => netSummary(spec, from).params.trainable.toLocaleString("en-US");
}

type Cell = { cell_type: "markdown" | "code"; source: string };

const md = (source: string): Cell => ({ cell_type: "markdown", source });
const code = (source: string): Cell => ({ cell_type: "code", source });

function cells(t: NetText): Cell[] {
  const hasPhase2 = t.phase2 !== null;
  const unfreeze = t.unfreezeFrom === null ? "null" : `"${t.unfreezeFrom}"`;
  let section = 0;
  const h = (title: string) => `## ${++section}. ${title}`;
  const out: Cell[] = [
    md(
      `# ${t.title}: pneumonia on chest X-rays by transfer learning\n\n${t.intro}\n\n` +
        "This notebook walks through transfer learning one step per cell: the data and its " +
        "imbalance, preprocessing, building the net and loading its weights, choosing what to " +
        "freeze, caching the frozen activations, the head, the loss and optimiser, each fit " +
        "with early stopping, the threshold, then a clinical evaluation with confidence " +
        "intervals, Grad-CAM and MLflow. Each step is one documented function of " +
        "`lib/training/steps.ts`: `deno task train` chains the very same functions.\n\n" +
        "**Change a number and re-run from that cell**: the kernel keeps everything above it. " +
        "A changed setting makes a new run (its id is a hash of the configuration); an " +
        "unchanged one picks up where it stopped.\n\n" +
        "> Research and teaching material, **not a diagnostic device**.",
    ),
    md(
      "## Settings\n\n" +
        "Change these, or set `CXR_PROFILE`, `CXR_DATA`, `CXR_WEIGHTS`, `MLFLOW_TRACKING_URI` " +
        "before starting Jupyter (the environment wins, so `deno task notebooks --profile full` " +
        "runs this notebook unchanged). A relative `CXR_DATA` is looked up from the folder you " +
        "started Jupyter in, then from the repository root.\n\n" +
        "- `profile`: `quick` (a small stratified subset and few epochs, a few minutes on a " +
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
        '  intensity: "equalize", // "off" | "equalize" | "clahe": normalisation, also when served\n' +
        "  // augmentViews: 2, // K augmented views per training image, cached (default: 1 in full, 0 in quick)\n" +
        "});\n" +
        "await cxr.show(cxr.settingsView(settings));",
    ),
    md(
      `${h("The data")}\n\n` +
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
    md(`${h("Preprocessing")}\n\n${t.preprocessing}`),
    code("await cxr.show(await cxr.preprocessingView(settings.net, data.splits.train[0]));"),
    md(
      `${h("The recipe")}\n\n` +
        "Every number the training uses, in one place. The profile gives the defaults (epochs, " +
        "subset); the values written here override them. This is the configuration " +
        "`deno task train` would take as flags, and the one recorded with the run.\n\n" +
        "- `dropout`: fraction of the pooled features dropped at each training step (the " +
        "head's only regulariser).\n" +
        "- `classWeight`: `balanced` weighs each NORMAL image more, so that both classes count " +
        "the same in the loss; `none` lets the majority class dominate.\n" +
        "- `phase1.lr`: Adam's learning rate for the head.\n" +
        (hasPhase2
          ? "- `phase2.unfreezeFrom`: the first layer that phase 2 trains (Keras' " +
            "`for layer in base.layers[i:]: layer.trainable = True`); `phase2.lr` is its " +
            "(much lower) learning rate, so that the pretrained filters move gently.\n"
          : "- `phase2: null`: VGG16's base stays frozen (the original baseline).\n") +
        "- `augmentViews`: augmented views per training image (crops up to 1.5x, small " +
        "rotations and shifts, contrast, blur, noise), each computed once through the frozen " +
        "base and cached; each epoch draws one view per image; 0 = none, the full profile's " +
        "default is 1.",
    ),
    code(
      "const config = cxr.trainingConfig(settings, {\n" +
        "  dropout: 0.5,\n" +
        '  classWeight: "balanced", // "balanced" | "none"\n' +
        "  phase1: { lr: 1e-3 },\n" +
        (hasPhase2
          ? `  phase2: { unfreezeFrom: ${unfreeze}, lr: 1e-5 },\n`
          : '  phase2: null, // try { unfreezeFrom: "block5_conv3", epochs: 2 }\n') +
        "  augmentViews: settings.augmentViews, // the settings' value (CXR_AUGMENT_VIEWS), else the profile's\n" +
        '  thresholdMethod: "sens95", // "sens95" | "youden" | "0.5"\n' +
        "});\n" +
        "await cxr.show(cxr.configView(config));",
    ),
    md(
      `${h("Build the net and load its weights")}\n\n${t.architecture}\n\n` +
        "`buildNet` is Keras' `" + t.title + "(include_top=False, weights=...)` plus the head: " +
        "the architecture comes from `lib/models/` (written like Keras' `applications/*.py`), " +
        "the weights from the chosen source. Their md5 is printed and recorded with the run, so " +
        "a result always says what it started from. `initBackend` picks where tfjs computes " +
        "(the frozen part runs in ONNX Runtime either way).",
    ),
    code(
      '// tfjs trains here: "auto" picks tfjs-node (native) when installed, else WebAssembly.\n' +
        'const backend = await cxr.initBackend("auto");\n' +
        "const net = await cxr.buildNet(config);\n" +
        "await cxr.show(cxr.netView(net, backend));",
    ),
    md(
      `${h("What is frozen, and where to cut")}\n\n` +
        "Transfer learning keeps most of the pretrained base **frozen**: its weights do not " +
        "change, so its output for an image never changes either. cxr uses that: the frozen " +
        "part runs once per image (ONNX Runtime) and its output at the **cut** is cached; " +
        "training then only runs the layers after the cut. `netSummary` counts what is " +
        "trainable; `chooseCut` finds the tensors that cross the cut (the *frontier*: " +
        (t.net === "densenet121"
          ? "one concatenated feature map for DenseNet121's last dense layer"
          : t.net === "resnet50"
          ? "for ResNet50 both the block's input and its shortcut"
          : "none for VGG16, whose head reads only the pooled features") +
        ") and their shapes.",
    ),
    code(
      "const cut = cxr.chooseCut(net, config.phase2?.unfreezeFrom ?? null);\n" +
        "await cxr.show(\n" +
        "  ...cxr.summaryView(cxr.netSummary(net, cut.unfreezeFrom)),\n" +
        "  cxr.cutView(cut),\n" +
        ");",
    ),
    md(
      `${h("The frozen activations, computed once")}\n\n` +
        "`loadData` scans the images and makes the split; `computeActivations` runs the frozen " +
        "part on every image and caches its outputs at the cut under `outputs/cache` (keyed by " +
        "the image's content, the net, the weights and the layer). The bar below updates as it " +
        "goes; a second run, or a re-run of this cell, reads the cache back in seconds.",
    ),
    code(
      "const runData = await cxr.loadData(config);\n" +
        "const acts = await cxr.computeActivations(config, net, cut, runData);\n" +
        "await cxr.show(cxr.activationsView(acts));",
    ),
    md(
      `${h("The head")}\n\n` +
        "The original head: global average pooling (already in the cached features), dropout, " +
        "and one sigmoid unit. cxr standardises the pooled features with the training set's " +
        "mean and standard deviation first, so one learning rate suits every base and weight " +
        "source; the standardisation is folded into the dense layer when the model is saved.",
    ),
    code("const head = cxr.buildHead(config, acts);\nawait cxr.show(cxr.headView(head));"),
    md(
      `${h("Loss, optimiser, learning rates, class weights")}\n\n` +
        "Binary cross-entropy, Adam, and Keras' `class_weight='balanced'` (n / (2 · n_class) " +
        "per class, computed from the training labels). Early stopping watches validation " +
        "ROC-AUC and, at the end of each phase, **restores the best epoch's weights**.",
    ),
    code(
      "const setup = cxr.trainingSetup(config, acts);\nawait cxr.show(cxr.setupView(setup, acts));",
    ),
    md(
      `${h("Phase 1: train the head on the frozen base")}\n\n` +
        "`openRun` opens the run folder (checkpoints, history, MLflow) exactly as `cxr.train` " +
        "does. `fitPhase1` then trains the head; its callbacks run in order after every epoch: " +
        "the progress bar, early stopping, the checkpoint, the run record, MLflow. The curves " +
        "mark the **best epoch**, the one whose weights are restored at the end of the phase " +
        "(green); the table gives the model's sensitivity and specificity on validation at the " +
        "threshold the recipe's rule picks there.",
    ),
    code(
      "const run = await cxr.openRun(config, { data: runData, net, cut, acts });\n" +
        "const phase1 = await cxr.fitPhase1(head, acts, setup, run.fitOptions());\n" +
        "await cxr.show(\n" +
        "  ...await cxr.fitView(phase1.history, head, acts, setup, config.thresholdMethod),\n" +
        ");",
    ),
  ];
  if (hasPhase2) {
    out.push(
      md(
        `${h("Phase 2: unfreeze the last layers and fine-tune")}\n\n${t.phase2}\n\n` +
          "`buildPhase2Model` puts the unfrozen tail (with its pretrained weights) under a copy " +
          "of the phase-1 head; `fitPhase2` trains both on the cached frontier activations. To " +
          "move the unfreeze point, change `phase2.unfreezeFrom` in the recipe and re-run from " +
          "there: the trainable count, the frontier and the curves change with it.",
      ),
      code(
        "const model = cxr.buildPhase2Model(config, net, cut, head);\n" +
          "const phase2 = await cxr.fitPhase2(model, acts, setup, run.fitOptions(phase1.history));\n" +
          "const history = phase2.history;\n" +
          "await cxr.show(\n" +
          "  ...await cxr.fitView(history, model, acts, setup, config.thresholdMethod),\n" +
          ");",
      ),
    );
  } else {
    out.push(
      md(
        "VGG16 is the baseline: no phase 2, the head on the frozen base is the model. (The " +
          "recipe's `phase2` line shows how to fine-tune block 5 instead.)",
      ),
      code(
        "// The head is the model, unless the recipe asks for a phase 2 (see Try this).\n" +
          "const model = config.phase2 ? cxr.buildPhase2Model(config, net, cut, head) : head;\n" +
          "const history = config.phase2\n" +
          "  ? (await cxr.fitPhase2(model, acts, setup, run.fitOptions(phase1.history))).history\n" +
          "  : phase1.history;\n" +
          "if (config.phase2) {\n" +
          "  await cxr.show(\n" +
          "    ...await cxr.fitView(history, model, acts, setup, config.thresholdMethod),\n" +
          "  );\n" +
          "}",
      ),
    );
  }
  out.push(
    md(
      `${h("Predict validation and choose the threshold")}\n\n` +
        "The model gives P(pneumonia) per image; a **threshold** turns it into a decision. It " +
        "is chosen on **validation** only, then applied unchanged to test. `sens95` (the " +
        "default) takes the highest specificity that keeps sensitivity ≥ 0.95, because a missed " +
        "pneumonia costs more than a false alarm; `youden` maximises sensitivity + specificity; " +
        "`0.5` is the usual fixed cut. The sweep shows the trade-off.",
    ),
    code(
      'const val = cxr.splitPredictions(model, acts, "val", setup);\n' +
        "const threshold = cxr.chooseValThreshold(val, config.thresholdMethod);\n" +
        "await cxr.show(...await cxr.thresholdView(val, threshold));",
    ),
    md(
      `${h("Save the run")}\n\n` +
        "`run.finish` writes what `cxr.train` writes at the end: predictions, the trained " +
        "weights, the ONNX classifier (with this threshold), the evaluation, and the MLflow " +
        "record. `deno task serve` can serve it from here.",
    ),
    code(
      "const result = await run.finish(model, history, acts, setup);\n" +
        "await cxr.show(cxr.markdown(`Run \\`${result.runId}\\` saved in \\`${result.runDir}\\`.`));",
    ),
    md(
      `${h("Clinical evaluation")}\n\n` +
        "Every figure has a 95% bootstrap interval (resampling whole patients), at the threshold " +
        "chosen above. Validation figures are **not** test figures: validation chose the " +
        "stopping epoch and the threshold, and its images come from the same source as the " +
        "training images.",
    ),
    code("await cxr.show(...await cxr.evaluationView(result.runDir));"),
    md(
      `${h("Robustness to acquisition shifts")}\n\n` +
        "A model tuned on one hospital's images meets other scanners, exposures and " +
        "post-processing. The shift suite replays validation images with fixed, seeded shifts " +
        "(contrast, gamma, brightness, blur, noise, resolution, JPEG, zoom, rotation, and an " +
        "inversion as a sanity case) " +
        "through the saved classifier, at the threshold chosen above: the specificity a shift " +
        "leaves is the false-alarm rate a new site would see. The notebook checks a few images at " +
        "the strongest severity; `deno task robustness` runs the whole suite.",
    ),
    code(
      "// A small suite: 24 images at the strongest severity (see robustnessView's options).\n" +
        "await cxr.show(...await cxr.robustnessView(result.runDir));",
    ),
    md(
      `${h("Grad-CAM: where does the net look?")}\n\n` +
        "Grad-CAM weighs the last convolutional feature maps by the gradient of the score, " +
        "showing which regions pushed the decision. Below: the most confident right and wrong " +
        "cases of each class. A heatmap on the lungs is reassuring; one on text markers, " +
        "borders or devices is a warning sign of shortcut learning.",
    ),
    code("await cxr.show(await cxr.gradcamView(result.runDir));"),
    md(
      `${h("MLflow")}\n\n` +
        "Every run logs its parameters, per-epoch metrics, charts, evaluation and the ONNX " +
        "classifier to MLflow (a server when `MLFLOW_TRACKING_URI` is set, else the file store " +
        "that `mlflow ui` reads). If the server is down, records wait in a local spool; " +
        "`deno task mlflow:sync` replays them.",
    ),
    code("await cxr.show(await cxr.mlflowView(result.runDir));"),
    md(`${h("Reading the results")}`),
    code("await cxr.show(await cxr.readingView(result.runDir));"),
    md(
      `${h("Try this")}\n\n` +
        t.tryThis(trainableCount(t.net)).map((x, i) => `${i + 1}. ${x}`).join("\n") +
        "\n\nThe next cell runs the class-weights experiment right here: the pooled features " +
        "are cached, so a head trains in seconds.",
    ),
    code(
      "// The same head without class weights: compare sensitivity and specificity at 0.5 and\n" +
        "// at the recipe's rule (which moves the threshold to make up for the imbalance).\n" +
        "const unweighted = cxr.buildHead(config, acts);\n" +
        "await cxr.fitPhase1(unweighted, acts, { ...setup, classWeights: null }, { progress: false });\n" +
        "await cxr.show(\n" +
        "  cxr.compareHeadsView({ balanced: head, none: unweighted }, acts, setup, config.thresholdMethod),\n" +
        ");",
    ),
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
