/**
 * Keras' ImageNet weights (`*_weights_tf_dim_ordering_tf_kernels_notop.h5`): where they are
 * looked up (like Keras: `CXR_WEIGHTS_DIR`, then `$KERAS_HOME/models`, then `~/.keras/models`),
 * and their download from Keras' public URLs when missing. Never a silent fallback: when they
 * cannot be found or fetched, the error says which file, from where, its md5, and where to put it.
 */
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import type { NetName } from "../spec.ts";
import { downloadFile, type DownloadOptions } from "./download.ts";
import { resolveUserPath } from "../../util/paths.ts";

/** Base of Keras' public weight files. */
export const KERAS_WEIGHTS_BASE_URL =
  "https://storage.googleapis.com/tensorflow/keras-applications/";

/** Keras' notop ImageNet weight files with their md5 (as keras.applications checks them). */
export const KERAS_IMAGENET: Record<NetName, { file: string; url: string; md5: string }> = {
  vgg16: {
    file: "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
    url: `${KERAS_WEIGHTS_BASE_URL}vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5`,
    md5: "6d6bbae143d832006294945121d1f1fc",
  },
  resnet50: {
    file: "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
    url: `${KERAS_WEIGHTS_BASE_URL}resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5`,
    md5: "4d473c1dd8becc155b73f8504c6f6626",
  },
  densenet121: {
    file: "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5",
    url:
      `${KERAS_WEIGHTS_BASE_URL}densenet/densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5`,
    md5: "30ee3e1110167f948a6b9946edeeb738",
  },
};

function env(name: string): string | undefined {
  try {
    const value = Deno.env.get(name);
    return value === undefined || value === "" ? undefined : value;
  } catch {
    return undefined;
  }
}

/** Folders searched for weight files, in order: CXR_WEIGHTS_DIR, $KERAS_HOME/models, ~/.keras/models. */
export function weightsSearchDirs(): string[] {
  const dirs: string[] = [];
  const own = env("CXR_WEIGHTS_DIR");
  if (own) dirs.push(resolveUserPath(own));
  const kerasHome = env("KERAS_HOME");
  if (kerasHome) dirs.push(resolve(kerasHome, "models"));
  const home = env("HOME") ?? homedir();
  if (home) dirs.push(join(home, ".keras", "models"));
  return [...new Set(dirs)];
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** Path of `net`'s ImageNet file in the first search folder that has it, else null. */
export function locateImagenetWeights(net: NetName): string | null {
  for (const dir of weightsSearchDirs()) {
    const path = join(dir, KERAS_IMAGENET[net].file);
    if (isFile(path)) return path;
  }
  return null;
}

/** First search folder that exists or can be created, and can be written to. */
async function firstWritableDir(dirs: string[]): Promise<string | null> {
  for (const dir of dirs) {
    try {
      await Deno.mkdir(dir, { recursive: true });
      const probe = await Deno.makeTempFile({ dir, prefix: ".cxr-write-test-" });
      await Deno.remove(probe);
      return dir;
    } catch {
      // not writable: try the next
    }
  }
  return null;
}

/** ImageNet weights that are neither on disk nor downloadable. */
export class ImagenetWeightsMissingError extends Error {
  constructor(readonly net: NetName, readonly dirs: string[], reason: string) {
    const { file, url, md5 } = KERAS_IMAGENET[net];
    super(
      `ImageNet weights for ${net} not found and not downloaded (${reason}).\n` +
        `  file: ${file}\n  url:  ${url}\n  md5:  ${md5}\n` +
        `  Download it on a machine with internet access and put it in ${
          dirs[0] ?? "~/.keras/models"
        }` +
        (dirs.length > 1 ? ` (searched: ${dirs.join(", ")})` : "") +
        `, or set CXR_WEIGHTS_DIR to its folder.\n` +
        `  Without ImageNet weights use --weights formula or none (results are not ImageNet).`,
    );
    this.name = "ImagenetWeightsMissingError";
  }
}

/**
 * Path of `net`'s ImageNet file: found in the search folders, else downloaded into the first
 * writable one (unless `download` is false). Throws `ImagenetWeightsMissingError` otherwise.
 */
export async function ensureImagenetWeights(
  net: NetName,
  opts:
    & { download?: boolean; baseUrl?: string }
    & Pick<
      DownloadOptions,
      "fetchImpl" | "progress" | "progressOptions"
    > = {},
): Promise<string> {
  const found = locateImagenetWeights(net);
  if (found) return found;
  const dirs = weightsSearchDirs();
  if (opts.download === false) {
    throw new ImagenetWeightsMissingError(net, dirs, "downloads disabled");
  }
  const dir = await firstWritableDir(dirs);
  if (!dir) throw new ImagenetWeightsMissingError(net, dirs, "no writable weights folder");
  const { file, url, md5 } = KERAS_IMAGENET[net];
  const source = opts.baseUrl ? url.replace(KERAS_WEIGHTS_BASE_URL, opts.baseUrl) : url;
  try {
    const result = await downloadFile(source, join(dir, file), {
      md5,
      fetchImpl: opts.fetchImpl,
      progress: opts.progress,
      progressOptions: opts.progressOptions,
    });
    return result.path;
  } catch (error) {
    throw new ImagenetWeightsMissingError(net, dirs, (error as Error).message);
  }
}
