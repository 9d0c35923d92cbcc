/**
 * `deno task data:download`: fetch the chest X-ray data set into `data/chest_xray`, from the
 * Kaggle API when KAGGLE_USERNAME/KAGGLE_KEY are set, else from the public Mendeley Data
 * archive (Kermany et al. V2). Resumable, checksummed, then unpacked.
 */
import { Buffer } from "node:buffer";
import { basename, dirname, join, resolve } from "node:path";
import { downloadResumable, installArchive, KAGGLE, MENDELEY } from "../data/download.ts";
import { dataDir } from "../util/paths.ts";
import { type CliIo, consoleIo, nonNegativeInt, parseCli, usageError } from "./args.ts";
import { exists } from "../util/fs.ts";
import { runCli } from "./entry.ts";

export const USAGE =
  `usage: deno task data:download [--source auto|mendeley|kaggle] [--url URL] [--sha256 HEX]
                                 [--data DIR] [--force] [--keep-archive] [--retries N]
  --source S       auto (default): kaggle when KAGGLE_USERNAME and KAGGLE_KEY are set, else mendeley
  --url URL        download this zip instead (any chest_xray/{train,val,test} archive)
  --sha256 HEX     expected sha256 of the archive (default: the one Mendeley publishes, if any)
  --data DIR       dataset folder to create (default: CXR_DATA or data/chest_xray)
  --force          replace an existing dataset folder
  --keep-archive   keep the downloaded zip after unpacking (default: delete it)
  --retries N      resume attempts after a cut connection (default 3)`;

export type { CliIo as Io };

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined;
  }
}

/** Download URL and published sha256 of ChestXRay2017.zip (fallback URL when the API fails). */
export async function mendeleyFile(
  fetchImpl: typeof fetch = fetch,
): Promise<{ url: string; sha256?: string; size?: number; note?: string }> {
  try {
    const res = await fetchImpl(MENDELEY.filesApi, {
      headers: { Accept: "application/json", "User-Agent": "cxr-data-download" },
    });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const files = await res.json() as {
      filename?: string;
      size?: number;
      content_details?: { download_url?: string; sha256_hash?: string };
    }[];
    const f = files.find((x) => x.filename === MENDELEY.fileName);
    if (!f?.content_details?.download_url) throw new Error(`${MENDELEY.fileName} not listed`);
    return {
      url: f.content_details.download_url,
      sha256: f.content_details.sha256_hash,
      size: f.size,
    };
  } catch (e) {
    return {
      url: MENDELEY.fallbackUrl,
      note: `Mendeley file list unavailable (${
        e instanceof Error ? e.message : e
      }); using the known URL without a published checksum`,
    };
  }
}

/** CLI entry; returns the exit code (2: bad usage, 1: download or unpack failed). */
export async function main(args: string[], io: CliIo = consoleIo): Promise<number> {
  const cli = { usage: USAGE, prefix: "data:download", io };
  const values = parseCli(args, {
    source: { type: "string" },
    url: { type: "string" },
    sha256: { type: "string" },
    data: { type: "string" },
    force: { type: "boolean" },
    "keep-archive": { type: "boolean" },
    retries: { type: "string" },
    quiet: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  }, cli);
  if (typeof values === "number") return values;
  const source = values.source ?? "auto";
  if (!["auto", "mendeley", "kaggle"].includes(source)) {
    return usageError(cli, `--source must be auto, mendeley or kaggle, got "${source}"`);
  }
  if (values.sha256 !== undefined && !/^[0-9a-fA-F]{64}$/.test(values.sha256)) {
    io.err(`data:download: --sha256 must be 64 hex digits, got "${values.sha256}"`);
    return 2;
  }
  let retries: number;
  try {
    retries = nonNegativeInt("retries", values.retries, 3);
  } catch (e) {
    io.err(`data:download: ${(e as Error).message}`);
    return 2;
  }
  const target = resolve(values.data ?? dataDir());
  const dataRoot = dirname(target);
  const progress = values.quiet ? false : true;

  let url: string;
  let sha256 = values.sha256;
  let fileName: string;
  const headers: Record<string, string> = {};
  const user = env("KAGGLE_USERNAME");
  const key = env("KAGGLE_KEY");
  if (values.url) {
    url = values.url;
    fileName = basename(new URL(url).pathname) || "dataset.zip";
    if (!fileName.endsWith(".zip")) fileName += ".zip";
  } else if (source === "kaggle" || (source === "auto" && user && key)) {
    if (!user || !key) {
      io.err(
        "data:download: --source kaggle needs KAGGLE_USERNAME and KAGGLE_KEY in the environment",
      );
      return 2;
    }
    url = KAGGLE.url;
    fileName = KAGGLE.fileName;
    headers["Authorization"] = `Basic ${Buffer.from(`${user}:${key}`).toString("base64")}`;
    io.out(`source: Kaggle ${KAGGLE.dataset}`);
  } else {
    const m = await mendeleyFile();
    url = m.url;
    sha256 ??= m.sha256;
    fileName = MENDELEY.fileName;
    io.out(`source: Mendeley Data doi:${MENDELEY.doi} (CC BY 4.0)`);
    if (m.note) io.out(`note: ${m.note}`);
  }
  if (!values.force) {
    if (await exists(target)) {
      io.err(`data:download: ${target} already exists (use --force to replace it)`);
      return 1;
    }
  }
  const archive = join(dataRoot, fileName);
  try {
    io.out(`downloading ${url} -> ${archive}`);
    const dl = await downloadResumable(url, archive, { sha256, headers, retries, progress });
    io.out(
      `archive: ${dl.bytes} bytes, sha256 ${dl.sha256}${
        sha256 ? " (verified)" : " (no published checksum)"
      }` +
        (dl.resumed ? ", resumed" : "") + (dl.cached ? ", already downloaded" : ""),
    );
    await Deno.writeTextFile(`${archive}.sha256`, `${dl.sha256}  ${fileName}\n`);
    const installed = await installArchive(archive, target, { force: values.force, progress });
    for (const note of installed.notes) io.out(`note: ${note}`);
    if (!values["keep-archive"]) {
      await Deno.remove(archive);
      await Deno.remove(`${archive}.sha256`).catch(() => {});
    }
    io.out(
      `installed ${installed.files} files at ${installed.root}; check it with \`deno task data:summary --data ${installed.root}\``,
    );
    return 0;
  } catch (e) {
    io.err(`data:download: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await runCli("data:download", main));
