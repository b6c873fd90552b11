// Numbers as the page writes them: values with three significant digits, probabilities
// as percentages.

export function fmt(v) {
  if (v === null || v === undefined || !isFinite(v)) return "–";
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
  return v.toPrecision(3);
}

export function pct(p) { return `${(p * 100).toFixed(1)}%`; }
