/** OpenAPI 3.1 description of every route the server answers (served at /openapi.json). */

const errorSchema = {
  type: "object",
  required: ["error"],
  properties: {
    error: {
      type: "object",
      required: ["code", "message"],
      properties: {
        code: { type: "string", examples: ["not_an_image", "payload_too_large", "unknown_model"] },
        message: { type: "string" },
      },
    },
  },
};

const thresholdSchema = {
  type: "object",
  description:
    "The operating threshold that produced the label and its profile: `validation` (chosen on " +
    "the validation split, never on test) or `site:<name>` (re-chosen on a site's labelled " +
    "images by `deno task calibrate`).",
  required: ["method", "value", "val_sensitivity", "val_specificity", "profile"],
  properties: {
    method: { type: "string", examples: ["sens95", "youden", "0.5", "target-sensitivity"] },
    value: { type: "number", minimum: 0, maximum: 1 },
    val_sensitivity: { type: ["number", "null"], description: "Validation profile only." },
    val_specificity: { type: ["number", "null"], description: "Validation profile only." },
    profile: { type: "string", examples: ["validation", "site:stmarys"] },
    site: {
      type: "object",
      description: "Site profiles: what the threshold was fitted on and gives there.",
      properties: {
        sensitivity: { type: ["number", "null"] },
        specificity: { type: ["number", "null"] },
        ci: {
          type: ["object", "null"],
          description: "95% bootstrap CIs (threshold re-chosen per resample).",
        },
        n: { type: ["integer", "null"] },
        positives: { type: ["integer", "null"] },
        negatives: { type: ["integer", "null"] },
        sha256: { type: ["string", "null"], description: "Content hash of the site's images." },
        createdAt: { type: ["string", "null"] },
        warnings: { type: "array", items: { type: "string" } },
      },
    },
  },
};

const weightsSchema = {
  type: "object",
  description: "The base weights the model started from.",
  required: ["label", "md5", "isImageNet", "notImageNet"],
  properties: {
    label: { type: "string", examples: ["imagenet", "formula (not ImageNet)"] },
    md5: { type: "string", description: "md5 of the base weights (lib/models/weights/md5.ts)" },
    isImageNet: { type: "boolean" },
    notImageNet: {
      type: "boolean",
      description: "True when the base was NOT started from ImageNet weights.",
    },
    source: {
      type: "string",
      description:
        "Where the weights came from: a file path, a download URL's file name, or 'formula' (deterministic stand-in).",
      examples: ["formula", "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5"],
    },
    choice: {
      type: "string",
      description:
        "What was asked for (--weights / CXR_WEIGHTS): imagenet, formula, none or a path.",
      examples: ["imagenet", "formula", "none"],
    },
  },
};

const untrainedSchema = {
  type: "boolean",
  description:
    "True for demo packages never trained on labelled X-rays: the output is meaningless.",
};

const intensitySchema = {
  type: "string",
  enum: ["off", "equalize", "clahe", "per member"],
  description: "Intensity normalisation the model applies to the decoded image (as in training); " +
    "an ensemble: its members' shared mode, or `per member` when they differ.",
};

const modelSchema = {
  type: "object",
  required: [
    "id",
    "net",
    "displayName",
    "threshold",
    "weights",
    "untrained",
    "gradcam",
    "gradcamLayer",
  ],
  properties: {
    id: { type: "string" },
    net: { type: "string", enum: ["vgg16", "resnet50", "densenet121", "ensemble"] },
    displayName: { type: "string" },
    threshold: thresholdSchema,
    thresholdProfiles: {
      type: "array",
      items: { type: "string" },
      description: "Profiles ?threshold= accepts for this model (validation first).",
    },
    weights: weightsSchema,
    untrained: untrainedSchema,
    gradcam: { type: "boolean", description: "Whether ?explain=gradcam is supported." },
    gradcamLayer: { type: ["string", "null"] },
    intensity: intensitySchema,
    members: {
      type: "array",
      items: { type: "string" },
      description: "Ensemble only: the member runs whose probabilities are combined.",
    },
    combine: { type: "string", enum: ["prob", "logit"], description: "Ensemble only." },
  },
};

const png = (description: string) => ({
  type: "string",
  contentEncoding: "base64",
  contentMediaType: "image/png",
  description,
});

const resultSchema = {
  type: "object",
  required: [
    "model",
    "net",
    "displayName",
    "probability",
    "label",
    "threshold",
    "weights",
    "untrained",
    "latency_ms",
  ],
  properties: {
    model: { type: "string" },
    net: { type: "string" },
    displayName: { type: "string" },
    probability: {
      type: ["number", "null"],
      minimum: 0,
      maximum: 1,
      description: "P(pneumonia); null when the guard withheld it (see guard.withheld).",
    },
    label: {
      type: ["string", "null"],
      enum: ["NORMAL", "PNEUMONIA", null],
      description: "At the threshold; null when withheld.",
    },
    withheld: {
      type: "boolean",
      description:
        "Present and true when the guard flagged the image and force=true was not given.",
    },
    threshold: thresholdSchema,
    weights: weightsSchema,
    untrained: untrainedSchema,
    intensity: intensitySchema,
    latency_ms: { type: "number" },
    gradcam: {
      type: "object",
      required: ["layer", "target", "width", "height", "png_base64"],
      properties: {
        layer: { type: "string" },
        target: { type: "string", enum: ["NORMAL", "PNEUMONIA"] },
        width: { type: "integer", description: "Heatmap width before upsampling" },
        height: { type: "integer" },
        png_base64: png("The X-ray with the jet-coloured heatmap blended over it (224x224)."),
        heatmap_png_base64: png(
          "The heatmap alone, RGBA with alpha = evidence, to lay over image.preview_png_base64.",
        ),
      },
    },
    gradcam_error: { type: "string" },
  },
};

const dicomSchema = {
  type: "object",
  description:
    "DICOM input only: the non-identifying tags used to display the image. Patient, study and institution fields are never read.",
  required: [
    "modality",
    "bodyPartExamined",
    "viewPosition",
    "photometricInterpretation",
    "bitsStored",
    "window",
    "transferSyntax",
  ],
  properties: {
    modality: { type: ["string", "null"], examples: ["CR", "DX", "CT"] },
    bodyPartExamined: { type: ["string", "null"], examples: ["CHEST"] },
    viewPosition: { type: ["string", "null"], examples: ["PA", "AP"] },
    photometricInterpretation: { type: "string", examples: ["MONOCHROME2", "MONOCHROME1", "RGB"] },
    bitsAllocated: { type: "integer" },
    bitsStored: { type: "integer" },
    rows: { type: "integer" },
    columns: { type: "integer" },
    frames: { type: "integer", description: "Frames in the object; frame 1 is used." },
    transferSyntax: {
      type: "object",
      required: ["uid", "name"],
      properties: { uid: { type: "string" }, name: { type: "string" } },
    },
    rescale: {
      type: ["object", "null"],
      properties: { slope: { type: "number" }, intercept: { type: "number" } },
    },
    window: {
      type: "object",
      description:
        "The VOI window applied (PS3.3 C.11.2.1.2; the first when several), the pixel range used when the file has none, or 'as stored' for 8-bit images.",
      required: ["source"],
      properties: {
        source: { type: "string", enum: ["tags", "pixel range", "as stored"] },
        center: { type: "number" },
        width: { type: "number" },
        function: { type: "string", enum: ["LINEAR", "LINEAR_EXACT", "SIGMOID"] },
      },
    },
  },
};

const guardSchema = {
  type: "object",
  description:
    "Out-of-distribution guard: does the input look like a frontal chest radiograph (DICOM tags, image score)?",
  required: ["ok", "message", "reasons", "score", "threshold", "tagsChecked", "withheld"],
  properties: {
    ok: { type: "boolean" },
    message: {
      type: ["string", "null"],
      examples: ["This does not look like a frontal chest radiograph"],
    },
    reasons: { type: "array", items: { type: "string" } },
    score: {
      type: ["number", "null"],
      description: "Image distance / threshold (above 1 is flagged); null when no guard is fitted.",
    },
    threshold: { type: ["number", "null"], description: "1 when an image score is computed." },
    tagsChecked: { type: "boolean", description: "Whether DICOM tags were checked." },
    withheld: {
      type: "boolean",
      description: "True when probabilities and labels were withheld (flagged, no force=true).",
    },
  },
};

const guardSummarySchema = {
  type: "object",
  required: ["fitted", "checks"],
  properties: {
    fitted: { type: "boolean", description: "Whether an image score is fitted (guard.json)." },
    checks: { type: "array", items: { type: "string" } },
    trainImages: { type: "integer" },
    falseAlarms: {
      type: "object",
      description: "Measured on held-out validation images when the guard was fitted.",
      properties: {
        flagged: { type: "integer" },
        n: { type: "integer" },
        rate: { type: "number" },
      },
    },
  },
};

const errors = (codes: number[]) =>
  Object.fromEntries(codes.map((c) => [
    String(c),
    {
      description: ERROR_TEXT[c],
      content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
    },
  ]));

const ERROR_TEXT: Record<number, string> = {
  400: "Empty body, not an image, corrupt/truncated image, bad multipart or bad parameter",
  404: "Unknown model or route",
  405: "Method not allowed",
  408: "The upload did not arrive within the body deadline (serve --body-timeout-ms)",
  413: "Upload larger than the configured limit",
  415: "Content-Type not accepted",
  421: "Host header not served here (DNS-rebinding guard; serve --allow-host)",
  422:
    "Image dimensions out of range, a DICOM file without an image, or a DICOM encoding that cannot be read",
  503:
    "Server busy (concurrency limit), models not loaded, or a model unavailable (its worker died)",
  504: "Request timed out",
};

export function openApiDocument(version = "1.0.0"): Record<string, unknown> {
  return {
    openapi: "3.1.0",
    info: {
      title: "cxr pneumonia classifier API",
      version,
      description:
        "Research prototype, not a diagnostic device. Predicts P(pneumonia) for a chest X-ray with one or more CNN classifiers (VGG16, ResNet50, DenseNet121) and optionally explains it with Grad-CAM.",
    },
    paths: {
      "/": {
        get: {
          summary: "Clinical-test web page",
          responses: { "200": { description: "HTML page", content: { "text/html": {} } } },
        },
      },
      "/openapi.json": {
        get: {
          summary: "This document",
          responses: { "200": { description: "OpenAPI 3.1", content: { "application/json": {} } } },
        },
      },
      "/healthz": {
        get: {
          summary: "Liveness: the process answers",
          responses: {
            "200": {
              description: "alive",
              content: {
                "application/json": {
                  schema: { type: "object", properties: { status: { const: "ok" } } },
                },
              },
            },
          },
        },
      },
      "/readyz": {
        get: {
          summary: "Readiness: at least one model is loaded",
          responses: {
            "200": {
              description:
                "ready; `active` (timed-out work still running included), `queued`, `uploads` " +
                "and `uploadBytes` (bodies held in memory), `busy` (a new upload would get 503), " +
                "`batching` (null when off: maxBatch, windowMs, ORT `batches` and `images` so " +
                "far, `pending` images waiting for a batch), `unavailable` (models whose worker " +
                "died after its restart, with why; 503 `status: unavailable` when none is left)",
              content: { "application/json": {} },
            },
            ...errors([503]),
          },
        },
      },
      "/v1/models": {
        get: {
          summary: "Loaded models",
          responses: {
            "200": {
              description: "models",
              content: {
                "application/json": {
                  schema: {
                    type: "object",
                    required: ["models", "guard", "notice"],
                    properties: {
                      models: { type: "array", items: modelSchema },
                      guard: guardSummarySchema,
                      notice: { type: "string" },
                    },
                  },
                },
              },
            },
          },
        },
      },
      "/v1/predict": {
        post: {
          summary: "Predict pneumonia for one image",
          parameters: [
            {
              name: "model",
              in: "query",
              required: false,
              description:
                "Model id or net name (vgg16, resnet50, densenet121, ensemble); default: all loaded models.",
              schema: { type: "string" },
            },
            {
              name: "explain",
              in: "query",
              required: false,
              description: "gradcam: add a Grad-CAM heatmap overlay (PNG, base64) per model.",
              schema: { type: "string", enum: ["gradcam"] },
            },
            {
              name: "threshold",
              in: "query",
              required: false,
              description:
                "Threshold profile: validation or site:<name> (from `deno task calibrate`); default: the server's (`serve --threshold`). Every selected model must have it (400 unknown_threshold_profile).",
              schema: { type: "string", examples: ["validation", "site:stmarys"] },
            },
            {
              name: "force",
              in: "query",
              required: false,
              description:
                "true: return probabilities and labels even when the guard says the image does not look like a frontal chest radiograph.",
              schema: { type: "string", enum: ["true", "false", "1", "0"] },
            },
          ],
          requestBody: {
            required: true,
            content: {
              "multipart/form-data": {
                schema: {
                  type: "object",
                  required: ["image"],
                  properties: {
                    image: {
                      type: "string",
                      description: "A JPEG, PNG or DICOM file",
                      contentMediaType: "application/octet-stream",
                    },
                  },
                },
              },
              "image/jpeg": { schema: { type: "string", contentMediaType: "image/jpeg" } },
              "image/png": { schema: { type: "string", contentMediaType: "image/png" } },
              "application/dicom": {
                schema: {
                  type: "string",
                  contentMediaType: "application/dicom",
                  description:
                    "A DICOM Part 10 file (or a bare little-endian dataset); frame 1 of a multi-frame object is used.",
                },
              },
            },
          },
          responses: {
            "200": {
              description: "Per-model prediction",
              content: {
                "application/json": {
                  schema: {
                    type: "object",
                    required: ["image", "guard", "results", "latency_ms", "notice"],
                    properties: {
                      image: {
                        type: "object",
                        required: ["width", "height", "format", "bytes", "sha256"],
                        properties: {
                          width: { type: "integer" },
                          height: { type: "integer" },
                          format: { type: "string", enum: ["jpeg", "png", "dicom"] },
                          bytes: { type: "integer" },
                          sha256: { type: "string" },
                          dicom: dicomSchema,
                          warnings: {
                            type: "array",
                            items: { type: "string" },
                            description:
                              "DICOM only, e.g. 'multi-frame DICOM (3 frames): frame 1 is shown'",
                          },
                          preview_png_base64: png(
                            "The 224x224 model input (for DICOM, and with explain=gradcam).",
                          ),
                        },
                      },
                      guard: guardSchema,
                      results: { type: "array", items: resultSchema },
                      latency_ms: { type: "number" },
                      notice: { type: "string" },
                    },
                  },
                },
              },
            },
            ...errors([400, 404, 405, 408, 413, 415, 421, 422, 503, 504]),
          },
        },
      },
    },
    components: { schemas: { Error: errorSchema } },
  };
}
