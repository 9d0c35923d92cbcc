/**
 * Opens an executed notebook's HTML export in headless Chromium and reports what a reader would
 * see wrong: stderr output boxes, and figure captions that spill out of their figure or overlap
 * another caption. Optionally keeps a full-page screenshot.
 */
import { chromium } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";

export interface HtmlCheck {
  stderrBoxes: string[];
  figures: number;
  captionProblems: string[];
  /** Text of every rendered output area (to look for strings). */
  text: string;
}

// Runs in the page (a string: this file is type-checked without the DOM lib).
const CHECK = `(() => {
  const stderrBoxes = [...document.querySelectorAll(
    '[data-mime-type="application/vnd.jupyter.stderr"], .output_stderr')]
    .map((e) => e.textContent.slice(0, 200));
  const figs = [...document.querySelectorAll("figure")];
  const problems = [];
  const boxes = [];
  for (const f of figs) {
    const c = f.querySelector("figcaption");
    if (!c) continue;
    const range = document.createRange();
    range.selectNodeContents(c);
    const t = range.getBoundingClientRect();
    const fr = f.getBoundingClientRect();
    const name = c.textContent.slice(0, 60);
    if (t.left < fr.left - 1 || t.right > fr.right + 1) {
      problems.push("caption wider than its figure: " + name);
    }
    boxes.push({ name, r: t });
  }
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i].r, b = boxes[j].r;
      const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
      const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
      if (w > 1 && h > 1) problems.push("captions overlap: " + boxes[i].name + " / " + boxes[j].name);
    }
  }
  const text = [...document.querySelectorAll(".jp-OutputArea-output, .output_area")].map((e) => e.innerText).join("\\n");
  return { stderrBoxes, figures: figs.length, captionProblems: problems, text };
})()`;

/** Loads `htmlPath` (file://) and checks it; writes a full-page PNG to `screenshot` if given. */
export async function checkNotebookHtml(
  htmlPath: string,
  screenshot?: string,
): Promise<HtmlCheck> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    await page.goto(`file://${htmlPath}`);
    const result = await page.evaluate(CHECK) as HtmlCheck;
    if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
    return result;
  } finally {
    await browser.close();
  }
}
