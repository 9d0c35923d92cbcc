/**
 * Text widths for headless vega from the real DejaVu Sans glyph advances.
 *
 * Without a canvas, vega guesses 0.8 em per character, which makes titles and legends reserve
 * far too much space (wide blank margins) and truncates labels early. The charts are drawn in
 * DejaVu Sans (resvg renders them with that font), so reading its advance widths from the TTF
 * (cmap format 4 + hmtx) lays text out as it will be drawn.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

const DEJAVU_DIR = "/usr/share/fonts/truetype/dejavu";

/** Advance width per BMP code point in em, plus a fallback for unmapped characters. */
interface Advances {
  widths: Map<number, number>;
  fallback: number;
}

/** Parse the advance widths of a TrueType font (em units), or null if unreadable. */
export function readAdvances(path: string): Advances | null {
  let buf: Uint8Array;
  try {
    buf = readFileSync(path);
  } catch {
    return null;
  }
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const tables = new Map<string, number>();
  const numTables = dv.getUint16(4);
  for (let i = 0; i < numTables; i++) {
    const rec = 12 + 16 * i;
    const tag = String.fromCharCode(buf[rec], buf[rec + 1], buf[rec + 2], buf[rec + 3]);
    tables.set(tag, dv.getUint32(rec + 8));
  }
  const head = tables.get("head"), hhea = tables.get("hhea"), hmtx = tables.get("hmtx");
  const cmap = tables.get("cmap");
  if (head === undefined || hhea === undefined || hmtx === undefined || cmap === undefined) {
    return null;
  }
  const unitsPerEm = dv.getUint16(head + 18);
  const numHMetrics = dv.getUint16(hhea + 34);
  const advanceOf = (glyph: number) =>
    dv.getUint16(hmtx + 4 * Math.min(glyph, numHMetrics - 1)) / unitsPerEm;
  // Find a Unicode BMP subtable in format 4.
  let sub = -1;
  const nSub = dv.getUint16(cmap + 2);
  for (let i = 0; i < nSub; i++) {
    const platform = dv.getUint16(cmap + 4 + 8 * i);
    const encoding = dv.getUint16(cmap + 6 + 8 * i);
    const offset = cmap + dv.getUint32(cmap + 8 + 8 * i);
    if (
      dv.getUint16(offset) === 4 && ((platform === 3 && encoding === 1) || platform === 0)
    ) {
      sub = offset;
      break;
    }
  }
  if (sub < 0) return null;
  const segX2 = dv.getUint16(sub + 6);
  const ends = sub + 14;
  const starts = ends + segX2 + 2;
  const deltas = starts + segX2;
  const rangeOffsets = deltas + segX2;
  const widths = new Map<number, number>();
  for (let s = 0; s < segX2 / 2; s++) {
    const end = dv.getUint16(ends + 2 * s);
    const start = dv.getUint16(starts + 2 * s);
    const delta = dv.getInt16(deltas + 2 * s);
    const ro = dv.getUint16(rangeOffsets + 2 * s);
    for (let c = start; c <= end && c !== 0xFFFF; c++) {
      let glyph: number;
      if (ro === 0) glyph = (c + delta) & 0xFFFF;
      else {
        const addr = rangeOffsets + 2 * s + ro + 2 * (c - start);
        const g = dv.getUint16(addr);
        glyph = g === 0 ? 0 : (g + delta) & 0xFFFF;
      }
      if (glyph !== 0) widths.set(c, advanceOf(glyph));
    }
  }
  return { widths, fallback: advanceOf(0) };
}

let regular: Advances | null | undefined;
let bold: Advances | null | undefined;

/** Width in pixels of `text` in DejaVu Sans at `fontSize`; 0.6 em per char if fonts are absent. */
export function dejavuTextWidth(text: string, fontSize: number, isBold = false): number {
  if (regular === undefined) {
    regular = readAdvances(join(DEJAVU_DIR, "DejaVuSans.ttf"));
    bold = readAdvances(join(DEJAVU_DIR, "DejaVuSans-Bold.ttf")) ?? regular;
  }
  const table = isBold ? bold : regular;
  if (!table) return 0.6 * text.length * fontSize;
  let em = 0;
  for (const ch of text) em += table.widths.get(ch.codePointAt(0)!) ?? table.fallback;
  return em * fontSize;
}
