// The page's one state object: the model's description, what is shown, the input, the last
// answer and the request loop's bookkeeping. Every module that reads or changes it imports
// it from here; window.convsee is the same object, for tests and the curious.
import { isVector } from "./spec.js";

export const state = {
  info: null, layers: {}, shown: [], opts: {}, cards: {},
  input: { kind: "draw", name: "your drawing" },  // draw | file | name
  strokes: [], base: null, drawing: false,
  data: null, empty: true, dirty: false, inflight: false, last: 0, timer: null,
  updates: 0, latency: 0, bytes: 0, error: null, views: {}, tip: null,
};
window.convsee = state;  // for tests and the curious

// a layer's channel options sent with every request: large layers start on their top
// channels by mean activation, page 0
export function optsFor(name) {
  const L = state.layers[name];
  if (!state.opts[name]) state.opts[name] = { order: !isVector(L) && L.shape[0] > state.info.page_size ? "top" : "index", page: 0 };
  return state.opts[name];
}
