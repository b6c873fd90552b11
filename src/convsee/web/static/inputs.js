// The inputs besides drawing: image files (chosen, dropped or pasted; downscaled in the
// browser before upload), the bundled samples and a random test image. Which of them the
// model is offered comes from /api/info's `inputs`.
import * as api from "./api.js";
import { $, el } from "./dom.js";
import { redraw } from "./draw/canvas.js";
import { state } from "./state.js";
import { setStatus } from "./status.js";
import { markDirty } from "./updates.js";

const UPLOAD_JPEG_QUALITY = 0.9;

export function setNamed(name) {
  state.input = { kind: "name", name };
  state.strokes = [];
  state.base = null;
  state.baseName = name;
  state.pendingBase = state.info.inputs.draw;  // draw the model's view on the pad when it comes
  redraw();
  markDirty();
}

async function loadFile(file) {
  if (!file) return;
  try {
    const url = await downscaled(file, state.info.inputs.upload_side);
    state.strokes = []; state.base = null; state.baseName = null;
    redraw();
    state.input = { kind: "file", name: `file ${file.name || "pasted image"}`, png: url };
    markDirty();
  } catch (err) {
    setStatus(`could not read that file as an image (${err.message || err})`, true);
  }
}

function downscaled(file, side) {
  // the image drawn on a white canvas (transparency on white, as the server does) at most
  // `side` px on its longer side, as JPEG: uploads stay well under the server's body cap
  return new Promise((resolve, reject) => {
    const img = new Image();
    const src = URL.createObjectURL(file);
    img.onload = () => {
      URL.revokeObjectURL(src);
      let s = Math.min(1, side / Math.max(img.naturalWidth, img.naturalHeight));
      for (let attempt = 0; attempt < 4; attempt++) {
        const w = Math.max(1, Math.round(img.naturalWidth * s));
        const h = Math.max(1, Math.round(img.naturalHeight * s));
        const c = el("canvas", { width: w, height: h });
        const x = c.getContext("2d");
        x.fillStyle = "#fff"; x.fillRect(0, 0, w, h);
        x.drawImage(img, 0, 0, w, h);
        const url = c.toDataURL("image/jpeg", UPLOAD_JPEG_QUALITY);
        if (url.length < 0.8 * state.info.inputs.max_body) { resolve(url); return; }
        s *= 0.7;
      }
      reject(new Error("too large even when scaled down"));
    };
    img.onerror = () => { URL.revokeObjectURL(src); reject(new Error("not an image the browser reads")); };
    img.src = src;
  });
}

export function initInputs() {  // files, drops, pastes and the random button
  $("file").addEventListener("change", (e) => { loadFile(e.target.files[0]); e.target.value = ""; });
  const drop = $("drop");
  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const type of ["dragleave", "drop"]) drop.addEventListener(type, () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); loadFile(e.dataTransfer.files[0]); });
  document.addEventListener("paste", (e) => {
    const item = [...(e.clipboardData ? e.clipboardData.items : [])].find((i) => i.type.startsWith("image/"));
    if (item) { e.preventDefault(); loadFile(item.getAsFile()); }
  });

  $("random").onclick = async () => {
    let j;
    try { j = await api.randomSample(); } catch (err) { setStatus(String(err.message || err), true); return; }
    setNamed(j.name);
  };
}

export function buildInputs(info) {  // what this model is offered: drawing, samples, random
  const inp = info.inputs;
  $("draw-box").hidden = !inp.draw;
  $("input-title").textContent = inp.draw ? (inp.digit_form && info.dataset === "mnist" ? "Draw a digit" : "Draw something") : "Input";
  if (inp.draw) $("drop-text").textContent = "or drop an image here, paste one, or";
  $("samples").hidden = !inp.samples.length;  // another dataset's samples are not offered
  for (const s of inp.samples) {
    const b = el("button", { text: s.label, title: `${s.name}: the bundled sample (${s.label})`, "data-sample": s.name.split(":")[1] });
    b.onclick = () => setNamed(s.name);
    $("samples").append(b);
  }
  const rnd = inp.random;
  if (rnd.available) {
    $("random").textContent = info.dataset === "mnist" && rnd.kind === "test" ? "Random test digit" : "Random test image";
    $("random").title = `a random image of ${rnd.what} (${rnd.count.toLocaleString()} images)`;
  } else {
    $("random").disabled = true;
    $("random-why").textContent = rnd.why;
  }
}
