/**
 * Deno's Jupyter kernel, seen from the library: whether we run inside one, rich outputs that
 * can be updated in place (progress), and status lines that land on stdout there (a notebook
 * renders stderr as pink error boxes) but stay on stderr in terminals and logs.
 */

/** MIME bundle, e.g. {"text/html": ..., "text/plain": ...}. */
export type MimeBundle = Record<string, unknown>;

/** Options of `Deno.jupyter.display` (update_display_data when `update`). */
export interface DisplayOptions {
  raw: boolean;
  display_id?: string;
  update?: boolean;
}

interface JupyterNamespace {
  display(bundle: MimeBundle, opts: DisplayOptions): Promise<void>;
}

/** The kernel's `Deno.jupyter`, or null outside a kernel (deno run, deno test). */
export function jupyterKernel(): JupyterNamespace | null {
  try {
    const j = (Deno as unknown as { jupyter?: JupyterNamespace }).jupyter;
    return j && typeof j.display === "function" ? j : null;
  } catch {
    return null; // outside `deno jupyter`, reading Deno.jupyter throws
  }
}

/** True when running inside Deno's Jupyter kernel. */
export function inKernel(): boolean {
  return jupyterKernel() !== null;
}

/** A status line: stdout inside a notebook kernel, stderr elsewhere (keeps pipes clean). */
export function statusLine(text: string): void {
  if (inKernel()) console.log(text);
  else console.error(text);
}

let displays = 0;

/** An output that each `update` replaces in place (a notebook's progress bar). */
export class LiveDisplay {
  readonly id = `cxr-${Date.now().toString(36)}-${++displays}`;
  #shown = false;
  #pending: Promise<void> = Promise.resolve();

  constructor(private readonly kernel: JupyterNamespace) {}

  /** Shows `bundle` (first call) or replaces what this display shows. */
  update(bundle: MimeBundle): void {
    const update = this.#shown;
    this.#shown = true;
    // Keep messages in order; a failed display must not break the work it reports on.
    this.#pending = this.#pending
      .then(() => this.kernel.display(bundle, { raw: true, display_id: this.id, update }))
      .catch(() => {});
  }
}

/** A LiveDisplay when inside a kernel, else null. */
export function liveDisplay(): LiveDisplay | null {
  const kernel = jupyterKernel();
  return kernel ? new LiveDisplay(kernel) : null;
}
