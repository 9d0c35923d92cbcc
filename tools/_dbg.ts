import * as cxr from "../lib/notebook/mod.ts";
const dir = Deno.args[0];
const a = await cxr.mlflowView(dir);
console.log(a[Symbol.for("Jupyter.display")]());
const b = await cxr.gradcamView(dir);
console.log(String(b[Symbol.for("Jupyter.display")]()["text/plain"]).slice(0, 300));
