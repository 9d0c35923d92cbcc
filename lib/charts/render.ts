/**
 * Headless rendering of Vega-Lite specs: SVG via vega's "none" renderer (no DOM, no canvas),
 * PNG by rasterising that SVG with resvg, and a Jupyter display bundle for notebooks.
 */
import * as vega from "vega";
import * as vl from "vega-lite";
import { Resvg } from "@resvg/resvg-js";
import type { VlSpec } from "./specs.ts";
import { dejavuTextWidth } from "./text_metrics.ts";

type TextItem = { fontSize?: number; fontWeight?: string | number; limit?: number };

// vega's text layout without a canvas: measure with the DejaVu Sans metrics the PNGs use.
(vega as unknown as { textMetrics: { width: (item: TextItem, text: string) => number } })
  .textMetrics.width = (item: TextItem, text: string) => {
    const size = item.fontSize != null ? +item.fontSize || 0 : 11;
    const w = item.fontWeight;
    const isBold = w === "bold" || (typeof w === "number" && w >= 600);
    return dejavuTextWidth(text == null ? "" : String(text), size, isBold);
  };

/** Fonts resvg uses for chart text (the specs ask for DejaVu Sans). */
export const FONT_DIRS = ["/usr/share/fonts/truetype/dejavu", "/usr/share/fonts"];

/** Compile a Vega-Lite spec to Vega; errors say it is the chart spec that is wrong. */
export function compileVegaLite(spec: VlSpec): vega.Spec {
  try {
    // Clone: vega tags inline data rows with symbols, the caller's spec must stay clean.
    // deno-lint-ignore no-explicit-any
    return vl.compile(structuredClone(spec) as any).spec as vega.Spec;
  } catch (e) {
    throw new Error(`invalid Vega-Lite spec: ${(e as Error).message}`);
  }
}

/** Render a Vega-Lite spec to an SVG string (white background, fixed size). */
export async function renderSvg(spec: VlSpec): Promise<string> {
  const view = new vega.View(vega.parse(compileVegaLite(spec)), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Rasterise an SVG string to PNG bytes at `scale` times its size. */
export function svgToPng(svg: string, scale = 2): Uint8Array {
  const resvg = new Resvg(svg, {
    fitTo: { mode: "zoom", value: scale },
    background: "white",
    font: {
      fontDirs: FONT_DIRS,
      loadSystemFonts: false,
      defaultFontFamily: "DejaVu Sans",
      sansSerifFamily: "DejaVu Sans",
    },
  });
  return new Uint8Array(resvg.render().asPng());
}

/** Render a Vega-Lite spec to PNG bytes (scale 2 = crisp on high-density screens). */
export async function renderPng(spec: VlSpec, scale = 2): Promise<Uint8Array> {
  return svgToPng(await renderSvg(spec), scale);
}

/** Write `<pathWithoutExt>.svg` and `.png`; returns both paths. */
export async function writeChart(
  spec: VlSpec,
  pathWithoutExt: string,
  scale = 2,
): Promise<{ svg: string; png: string }> {
  const svg = await renderSvg(spec);
  const out = { svg: `${pathWithoutExt}.svg`, png: `${pathWithoutExt}.png` };
  await Deno.writeTextFile(out.svg, svg);
  await Deno.writeFile(out.png, svgToPng(svg, scale));
  return out;
}

/** MIME bundle a Jupyter frontend renders (Vega-Lite, plus an SVG fallback when given). */
export type VegaBundle = {
  "application/vnd.vegalite.v5+json": VlSpec;
  "image/svg+xml"?: string;
  "text/plain": string;
};

/** Something the Deno Jupyter kernel displays through `Symbol.for("Jupyter.display")`. */
export interface VegaDisplay {
  spec: VlSpec;
  [key: symbol]: () => VegaBundle;
}

/**
 * Wrap a spec for Deno notebooks: evaluating the returned object in a cell shows the chart
 * (JupyterLab renders Vega-Lite natively). Pass `svg` (from renderSvg) to add a static
 * fallback for viewers without Vega, e.g. GitHub's notebook preview.
 */
export function vegaDisplay(spec: VlSpec, svg?: string): VegaDisplay {
  const title = typeof spec.title === "object" && spec.title
    ? String((spec.title as { text?: unknown }).text ?? "chart")
    : String(spec.title ?? "chart");
  return {
    spec,
    [Symbol.for("Jupyter.display")]: () => ({
      "application/vnd.vegalite.v5+json": spec,
      ...(svg ? { "image/svg+xml": svg } : {}),
      "text/plain": `Vega-Lite chart: ${title}`,
    }),
  };
}

/** vegaDisplay with the SVG fallback rendered first. */
export async function vegaDisplayWithSvg(spec: VlSpec): Promise<VegaDisplay> {
  return vegaDisplay(spec, await renderSvg(spec));
}
