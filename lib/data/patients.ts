/**
 * Patient ids from Kermany et al. chest X-ray file names, so that splits can keep every image
 * of one patient on the same side (many patients have several images).
 */

/** `person1_bacteria_1`, `person1_virus_6` -> `person1`. */
const PERSON = /^(person\d+)_/i;
/** `NORMAL2-IM-0381-0001` -> `NORMAL2-IM-0381` (checked before the plain `IM-` form). */
const NORMAL2 = /^(NORMAL2-IM-\d+)-/i;
/** `IM-0115-0001`, `IM-0135-0001-0001` -> `IM-0115`, `IM-0135`. */
const IM = /^(IM-\d+)-/i;

/**
 * The patient id encoded in a file name (a path or a bare name; the extension is ignored).
 * Names that match no known pattern are their own patient (the file stem), which can only
 * over-split, never merge two patients.
 */
export function patientId(fileName: string): string {
  const base = fileName.split(/[\\/]/).pop() ?? fileName;
  const stem = base.replace(/\.[^.]+$/, "");
  for (const pattern of [PERSON, NORMAL2, IM]) {
    const m = pattern.exec(stem);
    if (m) return m[1];
  }
  return stem;
}
