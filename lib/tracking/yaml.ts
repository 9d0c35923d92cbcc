/**
 * Just enough YAML for MLflow's files: `meta.yaml` (flat maps of scalars) and `MLmodel`
 * (nested maps, lists of scalars). Strings are always single-quoted so that ids such as
 * '0' or '606783375233873416' stay strings when PyYAML reads them back.
 */

export type YamlValue =
  | string
  | number
  | boolean
  | null
  | YamlValue[]
  | { [key: string]: YamlValue };

function scalar(value: string | number | boolean | null): string {
  if (value === null) return "null";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") {
    if (Number.isNaN(value)) return ".nan";
    if (!Number.isFinite(value)) return value > 0 ? ".inf" : "-.inf";
    return String(value);
  }
  return `'${value.replaceAll("'", "''").replaceAll("\n", "\n\n")}'`;
}

function emit(value: YamlValue, indent: string, out: string[]): void {
  if (Array.isArray(value)) {
    for (const item of value) {
      if (item !== null && typeof item === "object") {
        throw new Error("yaml: nested collections inside lists are not supported");
      }
      out.push(`${indent}- ${scalar(item)}`);
    }
    return;
  }
  if (value === null || typeof value !== "object") throw new Error("yaml: top level must be a map");
  for (const key of Object.keys(value).sort()) {
    const v = value[key];
    if (Array.isArray(v)) {
      if (v.length === 0) out.push(`${indent}${key}: []`);
      else {
        out.push(`${indent}${key}:`);
        emit(v, indent, out);
      }
    } else if (v !== null && typeof v === "object") {
      if (Object.keys(v).length === 0) out.push(`${indent}${key}: {}`);
      else {
        out.push(`${indent}${key}:`);
        emit(v, indent + "  ", out);
      }
    } else out.push(`${indent}${key}: ${scalar(v)}`);
  }
}

/** A YAML document for a map, keys sorted like PyYAML's `yaml.dump(sort_keys=True)`. */
export function toYaml(map: { [key: string]: YamlValue }): string {
  const out: string[] = [];
  emit(map, "", out);
  return out.join("\n") + "\n";
}

function parseScalar(text: string): string | number | boolean | null {
  const t = text.trim();
  if (t.startsWith("'") && t.endsWith("'") && t.length >= 2) {
    return t.slice(1, -1).replaceAll("''", "'");
  }
  if (t.startsWith('"') && t.endsWith('"') && t.length >= 2) return JSON.parse(t);
  if (t === "" || t === "null" || t === "~") return null;
  if (t === "true") return true;
  if (t === "false") return false;
  if (t === ".nan") return NaN;
  if (t === ".inf") return Infinity;
  if (t === "-.inf") return -Infinity;
  if (/^[-+]?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(t)) return Number(t);
  return t;
}

/**
 * Reads the flat `key: scalar` maps MLflow writes as meta.yaml (PyYAML output, quoted or
 * plain scalars; `tags: []`). Nested structures are not needed there and are rejected.
 */
export function parseFlatYaml(text: string, file = "yaml"): Record<string, YamlValue> {
  const out: Record<string, YamlValue> = {};
  for (const [i, raw] of text.split("\n").entries()) {
    if (raw.trim() === "" || raw.trimStart().startsWith("#")) continue;
    const m = /^([A-Za-z_][\w.-]*):(?:\s(.*))?$/.exec(raw);
    if (!m) throw new Error(`${file}:${i + 1}: not a flat 'key: value' line: ${raw}`);
    const v = (m[2] ?? "").trim();
    out[m[1]] = v === "[]" ? [] : v === "{}" ? {} : parseScalar(v);
  }
  return out;
}
