// Colours: the colormap a layer is painted with (the server's 256-entry LUTs), the display
// range the scale control gives a layer, painting 8-bit maps through a LUT, colour bars.
import { $ } from "./dom.js";
import { state } from "./state.js";

export function lutFor(L) {
  const choice = $("cmap").value;
  const cm = state.info.colormaps;
  return cm[choice === "auto" ? (L.nonneg ? "viridis" : "RdBu_r") : choice];
}

export function shaped(r, signed) {  // a display range: symmetric for signed layers, from 0 if not
  if (signed) { const m = Math.max(Math.abs(r[0]), Math.abs(r[1])) || 1e-6; return [-m, m]; }
  return [0, r[1] > 0 ? r[1] : 1e-6];
}

export function layerRange(d) {  // [range, words] of a layer under the scale chosen (not "map")
  const scale = $("scale").value;
  if (scale === "global" && d.reference) return [shaped(d.reference, !d.nonneg), "reference range"];
  const words = scale === "global" ? "this input: no reference range" : "this input";
  return [shaped([d.min, d.max], !d.nonneg), words];
}

// paint n 8-bit values (map range [lo, hi]) on ctx's w x h image with display range [a, b]
export function paintBytes(canvas, q, lo, hi, a, b, lut) {
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(canvas.width, canvas.height);
  const table = new Uint8Array(256);
  const step = (hi - lo) / 255, k = 255 / (b - a || 1);
  for (let t = 0; t < 256; t++) table[t] = Math.max(0, Math.min(255, Math.floor((lo + t * step - a) * k)));
  const px = img.data;
  for (let i = 0; i < q.length; i++) {
    const c = lut[table[q[i]]];
    px[4 * i] = c[0]; px[4 * i + 1] = c[1]; px[4 * i + 2] = c[2]; px[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

export function colourBar(canvas, lut) {
  const ctx = canvas.getContext("2d");
  for (let x = 0; x < canvas.width; x++) {
    const col = lut[Math.floor(x * 255 / (canvas.width - 1))];
    ctx.fillStyle = `rgb(${col[0]},${col[1]},${col[2]})`;
    ctx.fillRect(x, 0, 1, canvas.height);
  }
}
