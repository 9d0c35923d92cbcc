/**
 * The HTTP API over real loopback HTTP, with injected fake classifiers (the real ONNX ones are
 * covered in serving_real.test.ts): good JPEG/PNG uploads, each bad input -> its 4xx JSON error
 * with the server still answering afterwards, limits (503/504), and /openapi.json.
 */
import assert from "node:assert/strict";
import sharp from "sharp";
import { join } from "node:path";
import type { Classifier } from "../lib/inference/classifier.ts";
import type { Explainer } from "../lib/explain/explainer.ts";
import { type RunningServer, startServer } from "../lib/serving/server.ts";
import { sharedDir } from "../lib/util/paths.ts";
import { fakeClassifier } from "./serving_fixtures.ts";

const assertEquals = (a: unknown, b: unknown, msg = "") => assert.deepStrictEqual(a, b, msg);
const assertMatch = (s: string, re: RegExp) => assert.match(s, re);

// deno-lint-ignore no-explicit-any
type Json = Record<string, any>;

const TRAIN = join(sharedDir(), "data", "chest_xray", "train");
const jpegPath = (cls: string, i: number) => {
  const names = [...Deno.readDirSync(join(TRAIN, cls))].map((e) => e.name).sort();
  return join(TRAIN, cls, names[i]);
};

const fakeExplain: Explainer = async (_c, image, ctx) => {
  assertEquals(image.length, 224 * 224 * 3);
  assert(ctx.activation, "predict's activation is passed to the explainer");
  const png = await sharp(new Uint8Array(8 * 8 * 3).fill(200), {
    raw: { width: 8, height: 8, channels: 3 },
  }).png().toBuffer();
  return { overlayPng: new Uint8Array(png), h: 7, w: 7, layer: "relu", target: "PNEUMONIA" };
};

async function withServer(
  opts: Partial<Parameters<typeof startServer>[0]>,
  fn: (s: RunningServer) => Promise<void>,
) {
  const server = await startServer({
    classifiers: [fakeClassifier("densenet121", "dn-run"), fakeClassifier("vgg16", "vgg-run")],
    explain: fakeExplain,
    port: 0,
    ...opts,
  });
  try {
    await fn(server);
  } finally {
    await server.close();
  }
}

async function post(
  base: string,
  body: BodyInit | null,
  headers: Record<string, string> = {},
  query = "",
): Promise<{ status: number; json: Json }> {
  const res = await fetch(`${base}/v1/predict${query}`, { method: "POST", body, headers });
  const text = await res.text();
  let json: Json;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`non-JSON response ${res.status}: ${text.slice(0, 200)}`);
  }
  assertMatch(res.headers.get("content-type") ?? "", /application\/json/);
  return { status: res.status, json };
}

function multipart(bytes: Uint8Array, field = "image", type = "image/jpeg"): FormData {
  const form = new FormData();
  form.append(field, new Blob([bytes as Uint8Array<ArrayBuffer>], { type }), "x.jpeg");
  return form;
}

/** A valid PNG whose IHDR claims width x height (CRC fixed), for header-only size checks. */
async function pngClaiming(width: number, height: number): Promise<Uint8Array<ArrayBuffer>> {
  const png = new Uint8Array(
    await sharp(new Uint8Array(32 * 32 * 3), { raw: { width: 32, height: 32, channels: 3 } }).png()
      .toBuffer(),
  );
  const view = new DataView(png.buffer, png.byteOffset);
  view.setUint32(16, width);
  view.setUint32(20, height);
  // CRC-32 over chunk type + data of IHDR (bytes 12..29).
  let crc = 0xffffffff;
  for (let i = 12; i < 29; i++) {
    crc ^= png[i];
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  view.setUint32(29, (crc ^ 0xffffffff) >>> 0);
  return png;
}

Deno.test("serving: health, readiness, models and openapi", async () => {
  await withServer({}, async ({ url }) => {
    assertEquals(await (await fetch(`${url}/healthz`)).json(), { status: "ok" });
    const ready = await fetch(`${url}/readyz`);
    assertEquals(ready.status, 200);
    assertEquals((await ready.json()).models, 2);
    const models = await (await fetch(`${url}/v1/models`)).json();
    assertEquals(models.models.map((m: { id: string }) => m.id), ["dn-run", "vgg-run"]);
    assertEquals(models.models[0].displayName, "DenseNet121");
    assertEquals(models.models[0].weights.notImageNet, true);
    const doc = await (await fetch(`${url}/openapi.json`)).json();
    assertEquals(doc.openapi, "3.1.0");
    for (const p of ["/", "/openapi.json", "/healthz", "/readyz", "/v1/models", "/v1/predict"]) {
      assert(p in doc.paths, `openapi.json lists ${p}`);
    }
    assert(doc.paths["/v1/predict"].post.requestBody.content["multipart/form-data"]);
    const page = await fetch(`${url}/`);
    assertEquals(page.status, 200);
    assertMatch(await page.text(), /not a diagnostic device/);
    for (const f of ["/app.js", "/style.css"]) {
      const r = await fetch(`${url}${f}`);
      assertEquals(r.status, 200, f);
      await r.body?.cancel();
    }
  });
});

Deno.test("serving: readyz is 503 until the models are loaded", async () => {
  let resolveModels!: (c: Classifier[]) => void;
  const pending = new Promise<Classifier[]>((r) => (resolveModels = r));
  await withServer({ classifiers: pending }, async ({ url }) => {
    const r1 = await fetch(`${url}/readyz`);
    assertEquals(r1.status, 503);
    await r1.body?.cancel();
    const p = await post(url, await Deno.readFile(jpegPath("NORMAL", 0)), {
      "content-type": "image/jpeg",
    });
    assertEquals(p.status, 503);
    assertEquals(p.json.error.code, "not_ready");
    resolveModels([fakeClassifier("resnet50", "rn")]);
    await new Promise((r) => setTimeout(r, 10));
    const r2 = await fetch(`${url}/readyz`);
    assertEquals(r2.status, 200);
    await r2.body?.cancel();
  });
});

Deno.test("serving: good JPEG and PNG, multipart and raw, model choice, gradcam", async () => {
  await withServer({}, async ({ url }) => {
    const jpeg = await Deno.readFile(jpegPath("PNEUMONIA", 0));
    const a = await post(url, multipart(jpeg));
    assertEquals(a.status, 200, JSON.stringify(a.json));
    assertEquals(a.json.results.length, 2);
    const r = a.json.results[0];
    assertEquals(r.model, "dn-run");
    assert(r.probability > 0 && r.probability < 1);
    assertEquals(r.label, r.probability >= 0.5 ? "PNEUMONIA" : "NORMAL");
    assertEquals(r.threshold.val_sensitivity, 0.95);
    assertEquals(r.weights.md5, "0123456789abcdef");
    assertEquals(r.weights.notImageNet, true);
    assert(typeof r.latency_ms === "number" && r.latency_ms >= 0);
    assertEquals(a.json.image.format, "jpeg");
    assertEquals(a.json.image.bytes, jpeg.length);
    assertMatch(a.json.notice, /not a diagnostic device/);
    assertEquals(r.gradcam, undefined);

    // Raw body gives the same answer as multipart.
    const b = await post(url, jpeg, { "content-type": "image/jpeg" }, "?model=densenet121");
    assertEquals(b.status, 200);
    assertEquals(b.json.results.length, 1);
    assertEquals(b.json.results[0].probability, r.probability);

    // PNG of the same pixels: same decoded input, so the same probability.
    const png = new Uint8Array(await sharp(jpeg).png().toBuffer());
    const c = await post(url, png, { "content-type": "image/png" }, "?model=vgg-run");
    assertEquals(c.status, 200);
    assertEquals(c.json.image.format, "png");
    assertEquals(c.json.results[0].model, "vgg-run");
    assertEquals(c.json.results[0].probability, r.probability);

    // A different image gives a different probability (the fake reads the pixels).
    const other = await post(url, await Deno.readFile(jpegPath("NORMAL", 3)), {
      "content-type": "image/jpeg",
    });
    assert(other.json.results[0].probability !== r.probability);

    const g = await post(url, multipart(jpeg), {}, "?explain=gradcam&model=dn-run");
    assertEquals(g.status, 200);
    const gc = g.json.results[0].gradcam;
    assertEquals(gc.layer, "relu");
    const pngBytes = Uint8Array.from(atob(gc.png_base64), (ch) => ch.charCodeAt(0));
    assertEquals((await sharp(pngBytes).metadata()).format, "png");
  });
});

Deno.test("serving: every bad input is a 4xx JSON error and the server keeps serving", async () => {
  await withServer({ limits: { maxBytes: 200_000 } }, async ({ url }) => {
    const jpeg = await Deno.readFile(jpegPath("NORMAL", 1));
    const cases: [string, () => Promise<{ status: number; json: Json }>, number, string][] = [
      [
        "empty body",
        () => post(url, new Uint8Array(0), { "content-type": "image/jpeg" }),
        400,
        "empty_body",
      ],
      [
        "not an image",
        () =>
          post(url, new TextEncoder().encode("hello, not a picture"), {
            "content-type": "image/png",
          }),
        400,
        "not_an_image",
      ],
      [
        "truncated JPEG",
        () =>
          post(url, jpeg.slice(0, Math.floor(jpeg.length / 2)), { "content-type": "image/jpeg" }),
        400,
        "corrupt_image",
      ],
      [
        "wrong content type",
        () => post(url, jpeg, { "content-type": "text/plain" }),
        415,
        "unsupported_media_type",
      ],
      [
        "no content type",
        () => post(url, jpeg, { "content-type": "" }),
        415,
        "unsupported_media_type",
      ],
      [
        "over-size upload",
        () => post(url, new Uint8Array(300_000).fill(7), { "content-type": "image/jpeg" }),
        413,
        "payload_too_large",
      ],
      [
        "absurd dimensions",
        async () => post(url, await pngClaiming(100_000, 100_000), { "content-type": "image/png" }),
        422,
        "image_too_large",
      ],
      [
        "tiny image",
        async () => post(url, await pngClaiming(4, 4), { "content-type": "image/png" }),
        422,
        "image_too_small",
      ],
      [
        "unknown model",
        () => post(url, jpeg, { "content-type": "image/jpeg" }, "?model=alexnet"),
        404,
        "unknown_model",
      ],
      ["missing multipart field", () => post(url, multipart(jpeg, "file")), 400, "missing_field"],
      [
        "bad explain",
        () => post(url, jpeg, { "content-type": "image/jpeg" }, "?explain=lime"),
        400,
        "bad_parameter",
      ],
      [
        "broken multipart",
        () =>
          post(url, new TextEncoder().encode("--x\r\ngarbage"), {
            "content-type": "multipart/form-data; boundary=zz",
          }),
        400,
        "bad_multipart",
      ],
    ];
    for (const [name, send, status, code] of cases) {
      const r = await send();
      assertEquals(r.status, status, `${name}: ${JSON.stringify(r.json)}`);
      assertEquals(r.json.error.code, code, name);
      assert(r.json.error.message.length > 10, `${name} has a message`);
      // Still serving.
      const ok = await post(url, jpeg, { "content-type": "image/jpeg" }, "?model=dn-run");
      assertEquals(ok.status, 200, `after ${name}`);
    }
    const get = await fetch(`${url}/v1/predict`);
    assertEquals(get.status, 405);
    assertEquals((await get.json()).error.code, "method_not_allowed");
    const nf = await fetch(`${url}/nope`);
    assertEquals(nf.status, 404);
    assertEquals((await nf.json()).error.code, "not_found");
  });
});

Deno.test("serving: saturation gives 503 and slow requests 504", async () => {
  const slow = fakeClassifier("densenet121", "slow", { delayMs: 300 });
  await withServer({ classifiers: [slow], maxConcurrent: 1, maxQueue: 1 }, async ({ url }) => {
    const jpeg = await Deno.readFile(jpegPath("NORMAL", 2));
    const results = await Promise.all(
      Array.from({ length: 5 }, () => post(url, jpeg, { "content-type": "image/jpeg" })),
    );
    const statuses = results.map((r) => r.status).sort();
    assertEquals(statuses.filter((s) => s === 200).length, 2, String(statuses));
    assertEquals(statuses.filter((s) => s === 503).length, 3, String(statuses));
    assertEquals(results.find((r) => r.status === 503)!.json.error.code, "busy");
  });
  await withServer({ classifiers: [slow], timeoutMs: 50 }, async ({ url }) => {
    const r = await post(url, await Deno.readFile(jpegPath("NORMAL", 2)), {
      "content-type": "image/jpeg",
    });
    assertEquals(r.status, 504);
    assertEquals(r.json.error.code, "timeout");
    // Let the slow predict finish before the server closes.
    await new Promise((res) => setTimeout(res, 350));
  });
});
