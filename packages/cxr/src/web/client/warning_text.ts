// A warning as a clinician reads it on a card: its plain words, with the figures a technician checks kept apart.
// The server words each reason with plain words first and its numbers in brackets last (predict/verdict.ts,
// explain/image_checks.ts: "… (gate score 31.5, limit 23.1)", "(roughness 0.52, …)"); on the card those numbers
// read as engineering output, so they go into a details element under the warnings, and out of what a screen
// reader says. Only a last bracket that holds a number is taken: "(ages 1–5)" in the middle of a sentence stays.

export interface WarningText {
  /** The warning without its trailing figures. */
  plain: string;
  /** The figures, as the server wrote them, or null. */
  figures: string | null;
}

const TRAILING_FIGURES = /^(.*\S)\s*\(([^()]*\d[^()]*)\)\s*\.?$/s;

export function warningText(w: string): WarningText {
  const m = TRAILING_FIGURES.exec(w);
  if (!m) return { plain: w, figures: null };
  return { plain: m[1], figures: m[2] };
}
