// The request loop: anything that changes what the server should compute calls markDirty();
// requests go out throttled (at most one every MIN_INTERVAL ms) and never more than one in
// flight, each for the latest state. An answer lands in state.data and goes to the painter
// the entry module gave onAnswer (this module paints nothing itself).
import * as api from "./api.js";
import { $ } from "./dom.js";
import { padImage } from "./draw/canvas.js";
import { optsFor, state } from "./state.js";
import { setStatus } from "./status.js";

const MIN_INTERVAL = 40;  // ms between requests while drawing (<= 25 updates a second)

let paint = { answer() {}, empty() {} };

// answer(): state.data holds a new answer; empty(): there is no input to ask about
export function onAnswer(answer, empty) { paint = { answer, empty }; }

export function markDirty() { state.dirty = true; pump(); }

export function inputIsEmpty() {
  return state.input.kind === "draw" && !state.base && !state.strokes.length;
}

// the input as a request names it (a drawing: its PNG; a file: its upload:ID once kept)
export function inputFields(req = {}) {
  const inp = state.input;
  if (inp.kind === "draw") req.png = padImage();
  else if (inp.kind === "file" && inp.id) req.input = inp.id;  // kept by the server
  else if (inp.kind === "file") { req.png = inp.png; req.keep = true; }
  else req.input = inp.name;
  return req;
}

function request() {
  const req = { encoding: "u8", layers: {} };
  for (const name of state.shown) req.layers[name] = optsFor(name);
  inputFields(req);
  if ($("blur").value) req.blur = $("blur").value.split(",").map(Number);
  if ($("attr").value) {
    req.attribution = $("attr").value;
    if (req.attribution && req.attribution !== "saliency") req.attribution_layer = $("attr-layer").value;
  }
  return req;
}

function pump() {
  if (!state.dirty || state.inflight || state.timer) return;
  const wait = MIN_INTERVAL - (performance.now() - state.last);
  if (wait > 0) { state.timer = setTimeout(() => { state.timer = null; pump(); }, wait); return; }
  state.dirty = false;
  if (inputIsEmpty()) { paint.empty(); return; }
  state.inflight = true;
  const t0 = state.last = performance.now();
  const sent = state.input;
  const body = JSON.stringify(request());
  api.activations(body)
    .then((buf) => {
      if (state.dirty && inputIsEmpty()) return;  // cleared meanwhile: this answer is stale
      state.data = api.decodeFrame(buf);
      if (sent === state.input && sent.kind === "file") sent.id = state.data.input_name;
      state.bytes = buf.byteLength;
      state.empty = false;
      state.error = null;
      state.updates += 1;
      state.latency = performance.now() - t0;
      paint.answer();
    })
    .catch((err) => {
      state.error = String(err.message || err);
      if (sent.id && state.error.includes("no longer kept")) { delete sent.id; markDirty(); return; }
      setStatus(state.error, true);
    })
    .finally(() => { state.inflight = false; pump(); });
}
