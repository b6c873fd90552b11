// "The model sees": the input exactly as the model takes it (the answer's 8-bit pixels,
// grey or RGB) and the words that name it.
import { $ } from "./dom.js";
import { state } from "./state.js";

export function inputLabel() {
  const inp = state.input;
  if (inp.kind === "name" && state.data) {
    const d = state.data;
    return d.input_source && d.input_source !== d.input_name ? `${d.input_name}, ${d.input_source}` : d.input_name;
  }
  return inp.name;
}

export function drawSeen(d) {
  const seen = $("seen");
  const [h, w] = d.input_shape;
  if (seen.width !== w || seen.height !== h) { seen.width = w; seen.height = h; }
  const ctx = seen.getContext("2d");
  const img = ctx.createImageData(w, h);
  const rgb = d.input_shape.length === 3;
  for (let i = 0; i < h * w; i++) {
    if (rgb) { img.data[4 * i] = d.input[3 * i]; img.data[4 * i + 1] = d.input[3 * i + 1]; img.data[4 * i + 2] = d.input[3 * i + 2]; }
    else img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = d.input[i];
    img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}
