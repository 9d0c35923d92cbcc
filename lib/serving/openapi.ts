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
  description: "Operating threshold chosen on the validation split (never on test).",
  properties: {
    method: { type: "string", examples: ["sens95", "youden", "0.5"] },
    value: { type: "number", minimum: 0, maximum: 1 },
    val_sensitivity: { type: ["number", "null"] },
    val_specificity: { type: ["number", "null"] },
  },
};

const weightsSchema = {
  type: "object",
  properties: {
    label: { type: "string", examples: ["imagenet", "formula (not ImageNet)"] },
    md5: { type: "string" },
    isImageNet: { type: "boolean" },
    notImageNet: {
      type: "boolean",
      description: "True when the base was NOT started from ImageNet weights.",
    },
  },
};

const intensitySchema = {
  type: "string",
  enum: ["off", "equalize", "clahe"],
  description: "Intensity normalisation the model applies to the decoded image (as in training).",
};

const modelSchema = {
  type: "object",
  properties: {
    id: { type: "string" },
    net: { type: "string", enum: ["vgg16", "resnet50", "densenet121", "ensemble"] },
    displayName: { type: "string" },
    threshold: thresholdSchema,
    weights: weightsSchema,
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

const resultSchema = {
  type: "object",
  properties: {
    model: { type: "string" },
    net: { type: "string" },
    displayName: { type: "string" },
    probability: { type: "number", minimum: 0, maximum: 1, description: "P(pneumonia)" },
    label: { type: "string", enum: ["NORMAL", "PNEUMONIA"] },
    threshold: thresholdSchema,
    weights: weightsSchema,
    intensity: intensitySchema,
    latency_ms: { type: "number" },
    gradcam: {
      type: "object",
      properties: {
        layer: { type: "string" },
        target: { type: "string", enum: ["NORMAL", "PNEUMONIA"] },
        width: { type: "integer" },
        height: { type: "integer" },
        png_base64: { type: "string", contentEncoding: "base64", contentMediaType: "image/png" },
      },
    },
    gradcam_error: { type: "string" },
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
  413: "Upload larger than the configured limit",
  415: "Content-Type not accepted",
  422: "Image dimensions out of range",
  503: "Server busy (concurrency limit) or models not loaded",
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
            "200": { description: "ready", content: { "application/json": {} } },
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
                    properties: { models: { type: "array", items: modelSchema } },
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
          ],
          requestBody: {
            required: true,
            content: {
              "multipart/form-data": {
                schema: {
                  type: "object",
                  required: ["image"],
                  properties: { image: { type: "string", contentMediaType: "image/jpeg" } },
                },
              },
              "image/jpeg": { schema: { type: "string", contentMediaType: "image/jpeg" } },
              "image/png": { schema: { type: "string", contentMediaType: "image/png" } },
            },
          },
          responses: {
            "200": {
              description: "Per-model prediction",
              content: {
                "application/json": {
                  schema: {
                    type: "object",
                    properties: {
                      image: {
                        type: "object",
                        properties: {
                          width: { type: "integer" },
                          height: { type: "integer" },
                          format: { type: "string" },
                          bytes: { type: "integer" },
                          sha256: { type: "string" },
                        },
                      },
                      results: { type: "array", items: resultSchema },
                      latency_ms: { type: "number" },
                      notice: { type: "string" },
                    },
                  },
                },
              },
            },
            ...errors([400, 404, 405, 413, 415, 422, 503, 504]),
          },
        },
      },
    },
    components: { schemas: { Error: errorSchema } },
  };
}
