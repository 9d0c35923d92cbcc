import assert from "node:assert/strict";
import {
  applyShift,
  applyShifts,
  AUGMENT_RANGES,
  drawAugmentation,
  type Pixels,
  type Shift,
  shiftKey,
  SUITE_KINDS,
  SUITE_SEVERITIES,
  suiteShift,
  validateShift,
} from "../lib/data/shifts.ts";
import { mulberry32 } from "../lib/util/random.ts";

const S = 64;

/** A grey test image: a horizontal ramp with a bright square, equal channels. */
function phantom(): Pixels {
  const img = new Float32Array(S * S * 3);
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      const v = x >= 20 && x < 36 && y >= 10 && y < 26 ? 230 : 40 + 2 * x;
      img.set([v, v, v], (y * S + x) * 3);
    }
  }
  return img;
}

const grey = (img: Pixels, x: number, y: number) => img[(y * S + x) * 3];

function mean(img: Pixels): number {
  return img.reduce((a, b) => a + b, 0) / img.length;
}

function std(img: Pixels): number {
  const m = mean(img);
  return Math.sqrt(img.reduce((a, b) => a + (b - m) ** 2, 0) / img.length);
}

Deno.test("shifts: every suite shift is deterministic, 8-bit, same size, grey stays grey", async () => {
  const img = phantom();
  for (const kind of SUITE_KINDS) {
    for (const sev of [1, 2, 3] as const) {
      const s = suiteShift(kind, sev, 7);
      const a = await applyShift(img, s);
      const b = await applyShift(img, s);
      assert.deepEqual(a, b, shiftKey(s));
      assert.deepEqual(a.length, img.length);
      for (let i = 0; i < a.length; i += 3) {
        assert.ok(
          Number.isInteger(a[i]) && a[i] >= 0 && a[i] <= 255,
          `${shiftKey(s)} value ${a[i]}`,
        );
        assert.ok(a[i] === a[i + 1] && a[i] === a[i + 2], `${shiftKey(s)} channels differ at ${i}`);
      }
    }
  }
  assert.deepEqual(img, phantom(), "the input is never modified");
});

Deno.test("shifts: intensity kinds do what their names say", async () => {
  const img = phantom();
  assert.deepEqual(await applyShift(img, { kind: "invert", value: 1 }), img.map((v) => 255 - v));
  const low = await applyShift(img, { kind: "contrast", value: 0.5 });
  assert.ok(Math.abs(std(low) / std(img) - 0.5) <= 0.01, `${std(low) / std(img)} vs 0.5`);
  assert.ok(Math.abs(mean(low) - (mean(img))) <= 0.6, `${mean(low)} vs ${mean(img)}`);
  const dark = await applyShift(img, { kind: "gamma", value: 2 });
  assert.deepEqual(grey(dark, 0, 40), Math.round(255 * (40 / 255) ** 2));
  const bright = await applyShift(img, { kind: "brightness", value: 50 });
  assert.deepEqual([grey(bright, 0, 40), grey(bright, 25, 15)], [90, 255]); // clipped at 255
  const noisy = await applyShift(img, { kind: "noise", value: 10, seed: 1 });
  const diff = noisy.map((v, i) => v - img[i]);
  assert.ok(Math.abs(std(diff) - 10) <= 1.5, `${std(diff)} vs 10`);
  assert.ok(
    !(await applyShift(img, { kind: "noise", value: 10, seed: 2 })).every((v, i) => v === noisy[i]),
  );
});

Deno.test("shifts: blur, JPEG and down-up resampling lose detail, more with severity", async () => {
  const img = phantom();
  // Edge sharpness at the square's left edge (x = 19 -> 20).
  const edge = (im: Pixels) => grey(im, 20, 18) - grey(im, 19, 18);
  const sharpEdge = edge(img);
  let last = sharpEdge;
  for (const sev of [1, 2, 3] as const) {
    const e = edge(await applyShift(img, suiteShift("blur", sev)));
    assert.ok(e < last, `blur severity ${sev}: edge ${e} not below ${last}`);
    last = e;
  }
  const err = (a: Pixels) => a.reduce((s, v, i) => s + Math.abs(v - img[i]), 0) / a.length;
  const q90 = err(await applyShift(img, { kind: "jpeg", value: 90 }));
  const q8 = err(await applyShift(img, { kind: "jpeg", value: 8 }));
  assert.ok(q8 > q90, `JPEG q8 error ${q8} should exceed q90 error ${q90}`);
  const r = await applyShift(img, { kind: "resample", value: 0.25 });
  assert.ok(err(r) > 1, "a 4x down-up resampling changes the image");
  assert.deepEqual(await applyShift(img, { kind: "resample", value: 1 }), img);
});

Deno.test("shifts: geometry (zoom, rotation, translate, hflip)", async () => {
  const img = phantom();
  assert.deepEqual(await applyShift(img, { kind: "zoom", value: 1 }), img);
  assert.deepEqual(await applyShift(img, { kind: "rotation", value: 0 }), img);
  assert.deepEqual(await applyShift(img, { kind: "rotation", value: 360 }), img);
  const flipped = await applyShift(img, { kind: "hflip", value: 1 });
  assert.deepEqual(grey(flipped, S - 1, 40), grey(img, 0, 40));
  assert.deepEqual(await applyShift(flipped, { kind: "hflip", value: 1 }), img);
  // Zoom x2 about the centre: output x maps to source (x - 31.5) / 2 + 31.5.
  const z = await applyShift(img, { kind: "zoom", value: 2 });
  assert.ok(
    Math.abs(grey(z, 1, 40) - (40 + 2 * (15.75 + 0.5))) <= 1,
    `${grey(z, 1, 40)} vs ${40 + 2 * (15.75 + 0.5)}`,
  );
  // Right-most crop position: the output's right edge is the source's right edge.
  const zr = await applyShift(img, { kind: "zoom", value: 2, dx: 1 });
  assert.deepEqual(grey(zr, S - 1, 50), grey(img, S - 1, 50));
  // Rotation by 90 degrees turns the horizontal ramp vertical; corners fill with 0 at 20.
  const r90 = await applyShift(img, { kind: "rotation", value: 90 });
  assert.ok(Math.abs(grey(r90, 40, 5) - grey(r90, 40, 60)) > 80, "ramp now runs along y");
  const r20 = await applyShift(img, { kind: "rotation", value: 20 });
  assert.deepEqual(grey(r20, 0, 0), 0);
  const t = await applyShift(img, { kind: "translate", value: 0.25, dx: 1, dy: 0 });
  assert.deepEqual(grey(t, 16 + 30, 40), grey(img, 30, 40));
  assert.deepEqual(grey(t, 3, 40), 0);
});

Deno.test("shifts: applyShifts composes in order; bad shifts get a one-line error", async () => {
  const img = phantom();
  const seq: Shift[] = [{ kind: "brightness", value: 30 }, { kind: "invert", value: 1 }];
  assert.deepEqual(
    await applyShifts(img, seq),
    await applyShift(await applyShift(img, seq[0]), seq[1]),
  );
  assert.deepEqual(await applyShifts(img, []), img);
  assert.throws(() => validateShift({ kind: "gamma", value: -1 }), /gamma must be > 0/);
  for (
    const bad of [
      { kind: "jpeg", value: 0 },
      { kind: "zoom", value: 0.5 },
      { kind: "blur", value: 0.1 },
      { kind: "sharpen", value: 1 },
      { kind: "zoom", value: 1.2, dx: 3 },
    ] as Shift[]
  ) {
    let message = "";
    await applyShift(img, bad).catch((e) => message = (e as Error).message);
    assert.ok(message.startsWith("shift {"), `no clear error for ${JSON.stringify(bad)}`);
    assert.ok(!message.includes("\n"));
  }
  await applyShift(new Float32Array(10), { kind: "invert", value: 1 }).then(
    () => assert.ok(false, "non-square input accepted"),
    (e) => assert.ok(/square RGB image/.test((e as Error).message)),
  );
});

Deno.test("shifts: seeded augmentation draws replay exactly and stay in range", () => {
  const policy = [
    { kind: "zoom" as const, p: 0.8 },
    { kind: "rotation" as const, p: 0.5 },
    { kind: "jpeg" as const, p: 0.5 },
    { kind: "noise" as const, p: 0.3, range: [0, 4] as const },
  ];
  const a = Array.from({ length: 50 }, (_, i) => drawAugmentation(policy, mulberry32(i)));
  const b = Array.from({ length: 50 }, (_, i) => drawAugmentation(policy, mulberry32(i)));
  assert.deepEqual(a, b);
  const all = a.flat();
  assert.ok(all.some((s) => s.kind === "rotation") && all.some((s) => s.kind === "jpeg"));
  assert.ok(a.some((x) => x.length < policy.length), "probabilities skip some steps");
  for (const s of all) {
    const [lo, hi] = s.kind === "noise" ? [0, 4] : AUGMENT_RANGES[s.kind];
    assert.ok(s.value >= lo && s.value <= hi, `${shiftKey(s)} outside [${lo}, ${hi}]`);
    if (s.kind === "jpeg") assert.ok(Number.isInteger(s.value));
  }
  assert.deepEqual(JSON.parse(JSON.stringify(all)), all, "shifts are plain JSON");
  assert.deepEqual(SUITE_KINDS.length, 10);
  for (const k of SUITE_KINDS) assert.deepEqual(SUITE_SEVERITIES[k].length, 3);
});
