// Numbers as the page writes them: values with three significant digits, probabilities
// as percentages.

export function fmt(v) {
  if (v === null || v === undefined || !isFinite(v)) return "–";
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
  return v.toPrecision(3);
}

export function pct(p) { return `${(p * 100).toFixed(1)}%`; }

// A class name as the page lays it out: at most LABEL_CHARS characters, then "…" (the full
// name goes in a title tooltip). A checkpoint may name a class with 100,000 characters,
// which would stall every layout of the page.
export const LABEL_CHARS = 80;
export function short(name) {
  const s = String(name);
  return s.length > LABEL_CHARS ? `${s.slice(0, LABEL_CHARS)}…` : s;
}
