// The settings panel: scale and colormap (repaint the last answer), blur and the overlay
// (ask the server again), and the Grad-CAM layer, shown only for Grad-CAM. Their values
// are read where they are used, from the elements themselves.
import { $, el } from "./dom.js";
import { render } from "./render.js";
import { markDirty } from "./updates.js";

export function buildControls(info) {
  for (const name of Object.keys(info.colormaps)) $("cmap").append(el("option", { value: name, text: name }));
  for (const id of ["scale", "cmap"]) $(id).onchange = () => render();
  for (const id of ["blur", "attr", "attr-layer"]) $(id).onchange = () => { syncOverlay(); markDirty(); };
  const ov = info.overlays;
  if (!ov.available) {
    $("attr").disabled = true;
    $("attr").title = "the model has no map layer and class scores to attribute";
  }
  for (const name of ov.layers) $("attr-layer").append(el("option", { value: name, text: name }));
  if (ov.default) $("attr-layer").value = ov.default;
  syncOverlay();
}

// the input's own attributions take no layer
function syncOverlay() { $("attr-layer").hidden = ["", "saliency", "integrated-gradients", "occlusion"].includes($("attr").value); }
