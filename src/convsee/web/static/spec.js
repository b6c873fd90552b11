// The model's description (/api/info's `spec`) as the page reads it: what a layer is, the
// input region a map pixel sees, how large the model's input is drawn. Pure functions of
// the description; nothing here touches the page.

export function layerText(L) {
  const shape = L.shape.join("×");
  const sign = L.nonneg ? "non-negative" : "signed";
  let field = "";
  if (L.field && !L.field.whole) field = ` · sees ${L.field.size[0]}×${L.field.size[1]} px`;
  else if (L.field && L.field.whole) field = " · sees the whole input";
  return `${L.type} · ${shape} · ${sign}${field}`;
}

// drawn as one strip of units: vector layers, and maps of 1×1
export function isVector(L) { return L.kind === "vector" || (L.kind === "map" && L.shape[1] * L.shape[2] === 1); }

export function fieldBox(field, i, j) {  // spec.Field.box: input rows/cols (inclusive) of map pixel (i, j)
  const out = [];
  for (const [axis, k] of [[0, i], [1, j]]) {
    const centre = field.start[axis] + k * field.stride[axis];
    const half = (field.size[axis] - 1) / 2;
    out.push(Math.floor(centre - half + 1e-6), Math.floor(centre + half + 1e-6));
  }
  return out;
}

// [width, height] in CSS px of the model's input (C, H, W) on the page: small inputs at 168
// px on their longer side, larger ones at their own size up to 224 px
export function seenSize(inputShape) {
  const [, h, w] = inputShape;
  const side = Math.max(h, w) <= 64 ? 168 : Math.min(224, Math.max(h, w));
  return [Math.round(side * w / Math.max(h, w)), Math.round(side * h / Math.max(h, w))];
}
