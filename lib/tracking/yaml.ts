/**
 * MLflow's YAML files (`meta.yaml`, `MLmodel`) through the `yaml` package, set up to read and
 * write what PyYAML does: YAML 1.1, keys sorted like `yaml.dump(sort_keys=True)`, block lists
 * not indented, and every string single-quoted so that ids such as '0' or '606783375233873416'
 * stay strings when PyYAML reads them back.
 */
import { parse, stringify } from "yaml";

export type YamlValue =
  | string
  | number
  | boolean
  | null
  | YamlValue[]
  | { [key: string]: YamlValue };

/** A YAML document for a map, as PyYAML's `yaml.dump(sort_keys=True)` would lay it out. */
export function toYaml(map: { [key: string]: YamlValue }): string {
  return stringify(map, {
    version: "1.1",
    sortMapEntries: true,
    indentSeq: false,
    defaultStringType: "QUOTE_SINGLE",
    defaultKeyType: "PLAIN",
    lineWidth: 0,
  });
}

/** Reads a YAML map such as MLflow's meta.yaml; errors name `file` (and the line when known). */
export function parseFlatYaml(text: string, file = "yaml"): Record<string, YamlValue> {
  let doc: unknown;
  try {
    doc = parse(text, { version: "1.1" });
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message.split("\n")[0]}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== "object" || Array.isArray(doc)) throw new Error(`${file}: not a YAML map`);
  return doc as Record<string, YamlValue>;
}
