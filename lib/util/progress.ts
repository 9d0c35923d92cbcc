/**
 * Progress reporting for long work (decode, feature extraction, epochs, downloads).
 *
 * In a terminal it redraws one line (items, rate, ETA, extra fields); in a notebook kernel it
 * shows a bar that updates in place (on stdout's side: no stderr boxes); elsewhere (CI logs,
 * pipes) it prints a line at most every `minIntervalMs` so logs stay readable.
 */
import { type LiveDisplay, liveDisplay } from "./jupyter.ts";

export interface ProgressOptions {
  /** Total number of items (or bytes), if known. */
  total?: number;
  /** Unit shown after the rate, e.g. "img", "B". */
  unit?: string;
  /** Minimum milliseconds between two redraws / log lines. */
  minIntervalMs?: number;
  /** Where to write; defaults to stderr. */
  write?: (text: string) => void;
  /** Force plain line mode (no carriage returns). Default: auto (TTY -> redraw). */
  plain?: boolean;
  /** Silence entirely. */
  quiet?: boolean;
}

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h > 0
    ? `${h}h${String(m).padStart(2, "0")}m`
    : m > 0
    ? `${m}m${String(sec).padStart(2, "0")}s`
    : `${sec}s`;
}

function formatCount(n: number, unit: string): string {
  if (unit === "B") {
    const units = ["B", "KiB", "MiB", "GiB"];
    let v = n;
    let i = 0;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
  }
  return String(n);
}

function isTerminal(): boolean {
  try {
    return Deno.stderr.isTerminal();
  } catch {
    return false;
  }
}

/** A progress bar: `tick(n)` as work completes, `done()` at the end. */
export class Progress {
  readonly label: string;
  total: number | undefined;
  done_ = 0;
  private readonly unit: string;
  private readonly minIntervalMs: number;
  private readonly write: (text: string) => void;
  private readonly plain: boolean;
  private readonly quiet: boolean;
  private readonly start = performance.now();
  private lastDraw = 0;
  private fields: Record<string, string | number> = {};
  private readonly live: LiveDisplay | null;

  constructor(label: string, options: ProgressOptions = {}) {
    this.label = label;
    this.total = options.total;
    this.unit = options.unit ?? "it";
    this.quiet = options.quiet ?? false;
    // A notebook gets one output updated in place, unless the caller chose where to write.
    this.live = options.write || options.plain || this.quiet ? null : liveDisplay();
    const tty = isTerminal();
    this.plain = options.plain ?? (!tty && !this.live);
    this.minIntervalMs = options.minIntervalMs ?? (this.plain ? 5000 : this.live ? 500 : 100);
    // Logs get their first line after one interval, not a "0%" line for every short task.
    if (this.plain) this.lastDraw = performance.now();
    const encoder = new TextEncoder();
    // A terminal gets raw writes so the line can be redrawn in place.
    this.write = options.write ??
      (this.plain
        ? (text: string) => console.error(text.replace(/\n$/, ""))
        : (text: string) => Deno.stderr.writeSync(encoder.encode(text)));
  }

  /** Items per second since start. */
  get rate(): number {
    const elapsed = (performance.now() - this.start) / 1000;
    return elapsed > 0 ? this.done_ / elapsed : 0;
  }

  /** Seconds since start. */
  get elapsedSeconds(): number {
    return (performance.now() - this.start) / 1000;
  }

  /** Record `n` more finished items and optional extra fields (e.g. running loss). */
  tick(n = 1, fields?: Record<string, string | number>): void {
    this.done_ += n;
    if (fields) this.fields = { ...this.fields, ...fields };
    const now = performance.now();
    if (now - this.lastDraw >= this.minIntervalMs) {
      this.lastDraw = now;
      this.draw(false);
    }
  }

  /** One status line: `label 120/5216 (2%) 27.1 img/s ETA 3m08s loss=0.41`. */
  line(): string {
    const rate = this.rate;
    const parts = [this.label];
    if (this.total !== undefined) {
      const pct = this.total > 0 ? Math.floor((100 * this.done_) / this.total) : 100;
      parts.push(
        `${formatCount(this.done_, this.unit)}/${formatCount(this.total, this.unit)} (${pct}%)`,
      );
    } else {
      parts.push(formatCount(this.done_, this.unit));
    }
    // A rate over the first few milliseconds is noise: show it once there is something to time.
    if (this.elapsedSeconds >= 0.25) {
      parts.push(
        this.unit === "B" ? `${formatCount(rate, "B")}/s` : `${rate.toFixed(1)} ${this.unit}/s`,
      );
    }
    if (this.total !== undefined && this.done_ < this.total && rate > 0) {
      parts.push(`ETA ${formatDuration((this.total - this.done_) / rate)}`);
    } else {
      parts.push(`in ${formatDuration(this.elapsedSeconds)}`);
    }
    for (const [k, v] of Object.entries(this.fields)) {
      const text = typeof v !== "number" ? v : Number.isInteger(v) ? String(v) : v.toFixed(4);
      parts.push(`${k}=${text}`);
    }
    return parts.join(" ");
  }

  /** The bar as a notebook output: an HTML <progress> with the status line, and plain text. */
  html(): string {
    const esc = (t: string) => t.replace(/&/g, "&amp;").replace(/</g, "&lt;");
    const bar = this.total
      ? `<progress value="${this.done_}" max="${this.total}" style="width:12em;` +
        `vertical-align:middle;margin-right:8px"></progress>`
      : "";
    return `<div style="font-family:monospace;font-size:12px">${bar}${esc(this.line())}</div>`;
  }

  private draw(final: boolean): void {
    if (this.quiet) return;
    if (this.live) this.live.update({ "text/html": this.html(), "text/plain": this.line() });
    else if (this.plain) this.write(this.line() + "\n");
    else this.write("\r\x1b[2K" + this.line() + (final ? "\n" : ""));
  }

  /** Final line (always printed unless quiet). */
  done(fields?: Record<string, string | number>): void {
    if (fields) this.fields = { ...this.fields, ...fields };
    this.draw(true);
  }
}
