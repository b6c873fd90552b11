// The drawing pad (1-channel models): strokes in white on black over an optional base
// image (a named input to edit), Clear and Undo. What is drawn lives in state (strokes,
// base); every change is reported to the `changed` callback given to initPad.
import { $, el } from "../dom.js";
import { state } from "../state.js";

const pad = $("pad");
const pctx = pad.getContext("2d");

export function padImage() { return pad.toDataURL("image/png"); }  // what is sent to the server

export function redraw() {
  pctx.fillStyle = "#000";
  pctx.fillRect(0, 0, pad.width, pad.height);
  if (state.base) {
    pctx.imageSmoothingEnabled = true;
    pctx.drawImage(state.base, 0, 0, pad.width, pad.height);
  }
  for (const s of state.strokes) drawStroke(s, 0);
}

function drawStroke(s, from) {
  pctx.strokeStyle = "#fff";
  pctx.lineWidth = s.w;
  pctx.lineCap = pctx.lineJoin = "round";
  pctx.beginPath();
  const p = s.pts;
  const i0 = Math.max(0, from - 1);
  pctx.moveTo(p[i0][0], p[i0][1]);
  for (let i = i0; i < p.length; i++) pctx.lineTo(p[i][0], p[i][1] + (p.length === 1 ? 0.01 : 0));
  pctx.stroke();
}

function padPoint(e) {
  const r = pad.getBoundingClientRect();
  return [(e.clientX - r.left) * pad.width / r.width, (e.clientY - r.top) * pad.height / r.height];
}

function useDrawing() {
  const from = state.input;
  if (from.kind !== "draw") {
    const name = from.kind === "name" && state.base ? `${from.name} (edited)` : "your drawing";
    if (from.kind === "file") state.base = null;
    state.input = { kind: "draw", name };
  }
}

// a named input on the pad, to edit from: the model's view of it (grey), once its answer came
export function takeBase() {
  if (state.pendingBase && state.input.kind === "name") baseFromInput();
  state.pendingBase = false;
}

function baseFromInput() {
  const d = state.data;
  const [h, w] = d.input_shape;
  const c = el("canvas", { width: w, height: h });
  const img = c.getContext("2d").createImageData(w, h);
  const rgb = d.input_shape.length === 3;
  for (let i = 0; i < h * w; i++) {
    const g = rgb ? Math.round((d.input[3 * i] + d.input[3 * i + 1] + d.input[3 * i + 2]) / 3) : d.input[i];
    img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = g; img.data[4 * i + 3] = 255;
  }
  c.getContext("2d").putImageData(img, 0, 0);
  state.base = c;
  redraw();
}

export function initPad(changed) {
  pad.addEventListener("pointerdown", (e) => {
    e.preventDefault();
    pad.setPointerCapture(e.pointerId);
    state.drawing = true;
    useDrawing();
    state.strokes.push({ w: +$("brush").value, pts: [padPoint(e)] });
    drawStroke(state.strokes.at(-1), 0);
    changed();
  });
  pad.addEventListener("pointermove", (e) => {
    if (!state.drawing) return;
    const s = state.strokes.at(-1);
    const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
    const n = s.pts.length;
    for (const ev of events.length ? events : [e]) s.pts.push(padPoint(ev));
    drawStroke(s, n);
    changed();
  });
  for (const type of ["pointerup", "pointercancel"]) {
    pad.addEventListener(type, () => { if (state.drawing) { state.drawing = false; changed(); } });
  }

  $("clear").onclick = () => {
    state.strokes = []; state.base = null; state.baseName = null;
    state.input = { kind: "draw", name: "your drawing" };
    redraw(); changed();
  };
  $("undo").onclick = () => {
    state.strokes.pop();
    // back to an unedited sample: the exact stored image again
    if (!state.strokes.length && state.base && state.baseName) state.input = { kind: "name", name: state.baseName };
    redraw(); changed();
  };
}
