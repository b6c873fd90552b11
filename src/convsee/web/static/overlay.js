// The overlay on the model's input: saliency (the input gradient) or Grad-CAM at a chosen
// layer, as the server computed it (8-bit, 0 .. max), in inferno with an alpha that grows
// with the value, and its legend; where nothing speaks for the class (no patch lowers its
// score, no pixel raises it) the server's sentence instead of an empty overlay.
import { $ } from "./dom.js";
import { colourBar } from "./colour.js";
import { fmt, short } from "./format.js";
import { state } from "./state.js";

export function drawAttribution(attr) {
  const c = $("seen-attr");
  const legendBox = $("attr-legend");
  if (!attr) {
    c.getContext("2d").clearRect(0, 0, c.width, c.height);
    legendBox.hidden = true;
    return;
  }
  const [h, w] = attr.shape;
  c.width = w; c.height = h;
  const ctx = c.getContext("2d");
  legendBox.hidden = false;
  legendBox.classList.toggle("none", Boolean(attr.none));
  if (attr.none) {  // nothing speaks for the class (occlusion, integrated gradients): said, not drawn
    ctx.clearRect(0, 0, w, h);
    legendBox.querySelector(".what").textContent = `${attr.kind === "occlusion" ? "occlusion" : "integrated gradients"}: ${attr.none}`;
    return;
  }
  const img = ctx.createImageData(w, h);
  const lut = state.info.colormaps.inferno;
  for (let i = 0; i < h * w; i++) {
    const v = attr.map[i], col = lut[v];
    img.data[4 * i] = col[0]; img.data[4 * i + 1] = col[1]; img.data[4 * i + 2] = col[2];
    img.data[4 * i + 3] = Math.round(220 * v / 255);
  }
  ctx.putImageData(img, 0, 0);
  colourBar(legendBox.querySelector("canvas"), lut);
  legendBox.querySelector(".what").textContent = attributionWords(attr);
  legendBox.querySelector(".hi").textContent = fmt(attr.max);
}

export function attributionWords(attr) {
  const cls = short(state.info.classes[attr.target] ?? attr.target);
  if (attr.kind === "saliency") return `saliency for “${cls}”: |d ${attr.quantity} / d pixel|`;
  if (attr.kind === "integrated-gradients") return `integrated gradients for “${cls}” (16 steps from black): the pixels that raise its ${attr.quantity}`;
  if (attr.kind === "occlusion") return `occlusion for “${cls}”: how much its ${attr.quantity} drops when a patch over the pixel is set to black`;
  const names = { gradcam: "Grad-CAM", "gradcam++": "Grad-CAM++", xgradcam: "XGrad-CAM", layercam: "LayerCAM", eigencam: "Eigen-CAM", scorecam: "Score-CAM" };
  return `${names[attr.kind] ?? attr.kind} at ${attr.layer} for “${cls}”${attr.field_known ? "" : " (stretched: field unknown)"}`;
}
