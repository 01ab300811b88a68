// chainrule playground client: sends control messages, draws the frames the server computes.
// Every number drawn comes from the server (chainrule); this file only paints and relays.
"use strict";

const FEATURES = ["x1", "x2", "x1^2", "x2^2", "x1x2", "sin_x1", "sin_x2"];
const FEATURE_LABELS = {"x1": "x\u2081", "x2": "x\u2082", "x1^2": "x\u2081\u00b2", "x2^2": "x\u2082\u00b2",
  "x1x2": "x\u2081x\u2082", "sin_x1": "sin x\u2081", "sin_x2": "sin x\u2082"};
// Settings kept in the URL hash, with how to read each back.
const NUM = ["classes", "noise", "n", "train_ratio", "learning_rate", "batch_size", "reg_rate", "seed"];
const STR = ["dataset", "activation", "loss", "init", "optimizer", "regularization", "compare_init"];
const STEPS_PER_FRAME = 10;

// The lecture's poll questions: each sets up the network; pressing play shows the answer.
const ONE_LAYER = {hidden: [8], features: ["x1", "x2"], activation: "tanh", loss: "bce", init: "glorot", classes: 2,
  optimizer: "adam", learning_rate: 0.03, noise: 0, regularization: "none"};
const POLL = "Poll: does one hidden layer (8 tanh units, inputs x\u2081 x\u2082) reach zero classification " +
  "error on this set? Press play and watch the train error.";
const PRESETS = [
  ["one hidden layer: circle", {...ONE_LAYER, dataset: "circle"}, POLL],
  ["one hidden layer: xor", {...ONE_LAYER, dataset: "xor"}, POLL],
  ["one hidden layer: gaussians", {...ONE_LAYER, dataset: "gaussians"}, POLL],
  ["one hidden layer: spiral", {...ONE_LAYER, dataset: "spiral"}, POLL],
  ["one hidden layer: plane (MSE)", {...ONE_LAYER, dataset: "plane", loss: "quadratic"},
    "Poll: does one hidden layer reach near-zero MSE on the plane? Press play and watch the loss."],
  ["one hidden layer: multi-gaussian (MSE)", {...ONE_LAYER, dataset: "multi_gaussian", loss: "quadratic"},
    "Poll: does one hidden layer reach near-zero MSE on the six bumps? Press play and watch the loss."],
  ["zero initialization", {...ONE_LAYER, dataset: "circle", hidden: [4, 4], init: "zeros"},
    "Every weight starts at 0: press play and watch the units of a layer stay identical (the symmetry trap)."],
  ["three spiral arms (softmax)", {...ONE_LAYER, dataset: "spiral", classes: 3, loss: "softmax_ce", hidden: [8, 8],
    features: ["x1", "x2", "x1^2", "x2^2", "sin_x1", "sin_x2"]},
    "Three classes: softmax cross-entropy with one output per class. The map shows the predicted class, " +
    "its colour as deep as the softmax probability."],
  ["sigmoid, five layers", {...ONE_LAYER, dataset: "circle", hidden: [8, 8, 8, 8, 8], activation: "sigmoid",
    optimizer: "sgd", learning_rate: 0.3},
    "Watch the gradient norms: each sigmoid scales the gradient by at most 1/4 on its way back."],
];

const $ = (id) => document.getElementById(id);
let ws = null, config = null, data = null, frame = null, playing = false;
let curve = [];  // [epoch, train, test]
// The step view: explain_step's numbers for one example (the server's "explain" message), the stage
// shown (0 .. 2 * layers - 1: the forward pass layer by layer, then the backward pass) and the
// weight whose trace table is shown, [L, j, i] for W_L[j, i].
let explained = null, stage = 0, selected = null;

// ---------------------------------------------------------------- colours
// -1 orange, 0 white, +1 blue (TensorFlow Playground's scale).
const NEG = [245, 147, 34], POS = [8, 119, 189];
// One colour per class (class 0 orange and class 1 blue, as on the two-class scale).
const PALETTE = [NEG, POS, [46, 160, 67], [214, 39, 40], [148, 103, 189], [140, 86, 75]];
const rgb = (c) => `rgb(${c[0]},${c[1]},${c[2]})`;
function colour(v) {
  const t = Math.max(-1, Math.min(1, v));
  const c = t < 0 ? NEG : POS, a = Math.abs(t);
  return [255 + (c[0] - 255) * a, 255 + (c[1] - 255) * a, 255 + (c[2] - 255) * a];
}

function paint(canvas, values, grid, scale, discretize) {
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(grid, grid);
  for (let i = 0; i < grid * grid; i++) {
    let v = values[i] / scale;
    if (discretize) v = v > 0 ? 1 : -1;
    const c = colour(v);
    img.data[4 * i] = c[0]; img.data[4 * i + 1] = c[1]; img.data[4 * i + 2] = c[2]; img.data[4 * i + 3] = 255;
  }
  if (canvas.width !== grid) { canvas.width = grid; canvas.height = grid; }
  ctx.putImageData(img, 0, 0);
}

// More than two classes: each pixel in its predicted class's colour, as deep as the probability
// (white at 1/K, chance; full colour at 1).
function paintClasses(canvas, classes, confidence, grid, k, discretize) {
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(grid, grid);
  for (let i = 0; i < grid * grid; i++) {
    const c = PALETTE[classes[i]] || [0, 0, 0];
    const a = discretize ? 0.8 : Math.max(0, Math.min(1, (confidence[i] - 1 / k) / (1 - 1 / k)));
    for (let j = 0; j < 3; j++) img.data[4 * i + j] = 255 + (c[j] - 255) * a;
    img.data[4 * i + 3] = 255;
  }
  if (canvas.width !== grid) { canvas.width = grid; canvas.height = grid; }
  ctx.putImageData(img, 0, 0);
}

// ---------------------------------------------------------------- URL state
function readHash() {
  const out = {};
  const p = new URLSearchParams(location.hash.slice(1));
  for (const k of STR) if (p.has(k)) out[k] = p.get(k);
  for (const k of NUM) if (p.has(k) && p.get(k) !== "" && isFinite(Number(p.get(k)))) out[k] = Number(p.get(k));
  if (p.has("hidden")) out.hidden = parseLayers(p.get("hidden"));
  if (p.has("features")) out.features = p.get("features").split(",").filter((f) => f);
  if (p.has("activations")) out.activations = p.get("activations").split(",").filter((f) => f);
  return out;
}

function writeHash() {
  const p = new URLSearchParams();
  for (const k of STR.concat(NUM)) p.set(k, String(config[k]));
  p.set("hidden", config.hidden.join(","));
  p.set("features", config.features.join(","));
  if (config.activations.length) p.set("activations", config.activations.join(","));
  history.replaceState(null, "", "#" + p.toString());
}

function parseLayers(text) {
  const t = String(text).trim();
  if (!t) return [];
  return t.split(",").map((s) => Number(s.trim()));
}

// ---------------------------------------------------------------- socket
function send(msg) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
}

function connect() {
  ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
  ws.binaryType = "arraybuffer";
  let first = true;
  ws.onmessage = (ev) => {
    if (typeof ev.data !== "string") return onFrame(ev.data);
    const msg = JSON.parse(ev.data);
    if (msg.type === "config") {
      if (first) {  // the URL's settings, if any, replace the defaults (read before showing them)
        first = false;
        const wanted = readHash();
        if (Object.keys(wanted).length) send({type: "config", config: wanted});
      }
      config = msg.config; showConfig();
    } else if (msg.type === "data") { data = msg; curve = []; }
    else if (msg.type === "error") { showError(msg.message); setPlaying(false); showConfig(); }
    else if (msg.type === "explain") {
      // explain_step's page is a whole document with its own styles: it gets a frame of its own
      const f = document.createElement("iframe");
      f.setAttribute("data-testid", "explanation-frame");
      f.srcdoc = msg.html;
      $("explanation").replaceChildren(f);
      $("explanation").dataset.loss = String(msg.loss);
      explained = msg; stage = 0;
      selected = [msg.layers.length - 1, msg.label, 0];  // a link into the true class's score
      drawStep();
    }
    else if (msg.type === "diagnostics") drawDiagnostics(msg.layers);
  };
  ws.onclose = () => { setPlaying(false); showError("connection closed: restart `chainrule playground` and reload"); };
}

function showError(text) {
  $("error").textContent = text;
  clearTimeout(showError.timer);
  showError.timer = setTimeout(() => { $("error").textContent = ""; }, 6000);
}

function change(changes) {
  curve = []; closeStep();
  send({type: "config", config: changes});
}

// ---------------------------------------------------------------- frames
function onFrame(buffer) {
  const view = new DataView(buffer);
  const hlen = view.getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, hlen)));
  const g = header.grid, size = g * g;
  let at = 4 + hlen;  // the float32 arrays, in the order the header names them
  for (const name of header.arrays) {
    const count = name === "maps" ? header.n_maps : 1, maps = [];
    for (let m = 0; m < count; m++, at += 4 * size) maps.push(new Float32Array(buffer, at, size));
    header[name] = name === "maps" ? maps : maps[0];
  }
  frame = header;
  if (!curve.length || header.epoch < curve[curve.length - 1][0]) curve = [];
  curve.push([header.epoch, header.train_loss, header.test_loss]);
  if (curve.length > 2000) curve = curve.filter((_, i) => i % 2 === 0);
  draw();
  // the gradient norms cost a backward pass over the training set: every 5th frame while playing
  onFrame.count = (onFrame.count || 0) + 1;
  if (!playing || onFrame.count % 5 === 0) send({type: "diagnostics"});
  if (playing) send({type: "step", n: STEPS_PER_FRAME});
}

function drawDiagnostics(layers) {
  const logs = layers.map((r) => Math.log10(Math.max(r.grad_norm, 1e-12)));
  const low = Math.min(...logs, -8), high = Math.max(...logs, 1);
  $("diagnostics").innerHTML = "<tr><td>layer</td><td>grad norm</td><td></td><td>units</td></tr>" + layers.map((r, i) => {
    const w = 100 * (logs[i] - low) / ((high - low) || 1);
    const units = r.saturated !== null ? `${Math.round(100 * r.saturated)}% saturated`
      : r.dead !== null ? `${Math.round(100 * r.dead)}% dead` : "";
    return `<tr><td>${r.layer}</td><td>${r.grad_norm.toExponential(2)}</td>` +
      `<td style="width:40%"><div class="bar" style="width:${w.toFixed(1)}%"></div></td><td>${units}</td></tr>`;
  }).join("");
}

// The step view's numbers: 7 significant digits (float32 carries about 7).
function fmt7(v) { return Number(v).toPrecision(7).replace(/(\.\d*?)0+($|e)/, "$1$2").replace(/\.($|e)/, "$1"); }

function fmt(v) { return Number(v).toPrecision(4).replace(/\.?0+$/, "").replace(/\.?0+e/, "e"); }

function draw() {
  if (!frame || !config) return;
  $("train-loss").textContent = fmt(frame.train_loss);
  $("test-loss").textContent = fmt(frame.test_loss);
  $("epoch").textContent = String(frame.epoch);
  $("train-error").textContent = frame.train_error === null ? "-" : fmt(frame.train_error);
  $("test-error").textContent = frame.test_error === null ? "-" : fmt(frame.test_error);
  drawBoundary();
  drawNetwork();
  drawCurve();
}

function drawBoundary() {
  $("twin").hidden = !frame.twin;
  if (frame.twin) {
    $("twin-init").textContent = frame.twin.init;
    $("twin-train-loss").textContent = fmt(frame.twin.train_loss);
    $("twin-test-loss").textContent = fmt(frame.twin.test_loss);
    drawMap($("twin-boundary"), frame.twin_boundary, frame.twin_confidence);
  }
  drawMap($("boundary"), frame.boundary, frame.confidence);
  const k = data && data.classes;
  $("legend").innerHTML = k ? PALETTE.slice(0, k).map((c, i) =>
    `<span><i style="background:${rgb(c)}"></i>class ${i}</span>`).join("") : "";
}

// An output map scaled to the canvas, with the training (and test) points on it.
function drawMap(canvas, values, confidence) {
  const g = frame.grid, discretize = $("discretize").checked && data && data.task === "classification";
  const off = drawMap.off || (drawMap.off = document.createElement("canvas"));
  if (confidence) paintClasses(off, values, confidence, g, frame.classes, discretize);
  else paint(off, values, g, 1, discretize);
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(off, 0, 0, canvas.width, canvas.height);
  if (!data) return;
  const e = data.extent, W = canvas.width;
  const px = (x) => (x + e) / (2 * e) * W, py = (y) => (e - y) / (2 * e) * W;
  const sets = [[data.train, "#fff"]];
  if ($("show_test").checked) sets.push([data.test, "#000"]);
  for (const [pts, ring] of sets) {
    for (const [x, y, label] of pts) {
      const c = data.task === "classification" ? PALETTE[label] : colour(label);
      ctx.beginPath(); ctx.arc(px(x), py(y), 3, 0, 2 * Math.PI);
      ctx.fillStyle = rgb(c); ctx.fill();
      ctx.strokeStyle = ring; ctx.lineWidth = 1; ctx.stroke();
    }
  }
}

function drawCurve() {
  const canvas = $("curve"), ctx = canvas.getContext("2d"), W = canvas.width, H = canvas.height;
  ctx.clearRect(0, 0, W, H);
  if (curve.length < 2) return;
  let top = 0;
  for (const [, a, b] of curve) top = Math.max(top, a, b);
  const x0 = curve[0][0], x1 = curve[curve.length - 1][0] || 1;
  for (const [col, k] of [["#888", 1], ["#000", 2]]) {
    ctx.beginPath(); ctx.strokeStyle = col;
    curve.forEach((p, i) => {
      const x = (p[0] - x0) / ((x1 - x0) || 1) * W, y = H - p[k] / (top || 1) * (H - 4);
      i ? ctx.lineTo(x, y) : ctx.moveTo(x, y);
    });
    ctx.stroke();
  }
}

// The diagram: one column of unit maps per layer (inputs, hidden layers), links between them.
// Columns are wider in the step view, where numbers stand between them.
const UNIT = 40, ROW = 52;
let COL = 110;
function drawNetwork() {
  const net = $("network"), svg = $("links");
  const sizes = [config.features.length, ...config.hidden];
  COL = explained ? 160 : 110;
  const key = sizes.join(",") + "|" + config.features.join(",") + "|" + COL;
  if (net.dataset.layout !== key) {  // rebuild the unit canvases when the shape changes
    net.querySelectorAll("canvas, .label").forEach((el) => el.remove());
    sizes.forEach((n, l) => {
      for (let i = 0; i < n; i++) {
        const c = document.createElement("canvas");
        c.className = "unit"; c.style.left = (l * COL) + "px"; c.style.top = (i * ROW) + "px";
        c.title = l === 0 ? FEATURE_LABELS[config.features[i]] : `layer ${l}, unit ${i + 1}`;
        net.appendChild(c);
      }
      if (l === 0) config.features.forEach((f, i) => {
        const s = document.createElement("span");
        s.className = "label"; s.textContent = FEATURE_LABELS[f];
        s.style.left = "-34px"; s.style.top = (i * ROW + 12) + "px"; net.appendChild(s);
      });
    });
    net.dataset.layout = key;
  }
  const outs = frame.weights[frame.weights.length - 1].length;
  net.style.height = (Math.max(...sizes, outs, 1) * ROW + 10) + "px";
  const canvases = net.querySelectorAll("canvas.unit");
  frame.maps.forEach((m, i) => {
    let scale = 0;
    for (let j = 0; j < m.length; j++) scale = Math.max(scale, Math.abs(m[j]));
    if (canvases[i]) paint(canvases[i], m, frame.grid, scale || 1, false);
  });
  // links: frame.weights[l][to][from] joins column l to column l + 1 (the last: to the output).
  // In the backward pass of the step view, the links whose gradient is known show dJ/dw instead:
  // colour by its sign, width by its size in the layer, the number on hover (and for the selected one).
  const outX = sizes.length * COL, shown = stageShown();
  let paths = "";
  frame.weights.forEach((W, l) => {
    const L = l + 1, grad = shown && L >= shown.adjointsFrom ? explained.links[l].grad : null;
    let gmax = 0;
    if (grad) for (const row of grad) for (const g of row) gmax = Math.max(gmax, Math.abs(g));
    W.forEach((row, to) => row.forEach((w, from) => {
      const x1 = l * COL + UNIT, y1 = from * ROW + UNIT / 2;
      const x2 = l + 1 < sizes.length ? (l + 1) * COL : outX, y2 = to * ROW + UNIT / 2;
      const g = grad ? grad[to][from] : 0;
      const c = grad ? colour(g / (gmax || 1)) : colour(Math.sign(w));
      const width = grad ? 0.5 + 5.5 * Math.abs(g) / (gmax || 1) : Math.min(6, 0.5 + 2 * Math.abs(w));
      const d = `M${x1},${y1} C${(x1 + x2) / 2},${y1} ${(x1 + x2) / 2},${y2} ${x2},${y2}`;
      const isSel = selected && explained && selected[0] === L && selected[1] === to && selected[2] === from;
      const title = grad ? `W${L}[${to},${from}] = ${fmt7(w)}, \u2202J/\u2202W${L}[${to},${from}] = ${fmt7(g)}`
        : `weight ${w.toPrecision(4)}`;
      paths += `<path d="${d}" stroke="rgb(${c})" stroke-width="${width.toFixed(2)}" data-l="${l}" data-to="${to}" ` +
        `data-from="${from}" data-testid="link-${L}-${to}-${from}"${isSel ? ' class="selected"' : ""}><title>${title}</title></path>`;
      if (grad) {
        paths += `<text class="grad${isSel ? " selected" : ""}" x="${(x1 + x2) / 2}" y="${(y1 + y2) / 2 - 3}" ` +
          `text-anchor="middle" data-testid="link-grad-${L}-${to}-${from}">${fmt7(g)}</text>`;
      }
    }));
  });
  if (shown) paths += unitAnnotations(sizes, outX, outs, shown);
  // the output units: one per class with softmax (in the class's colour), else one
  for (let k = 0; k < outs; k++) {
    const fill = outs > 1 ? rgb(PALETTE[k] || [200, 200, 200]) : "#ccc";
    paths += `<circle cx="${outX + 8}" cy="${k * ROW + UNIT / 2}" r="8" fill="${fill}" data-testid="output-${k}">` +
      `<title>${outs > 1 ? "score of class " + k : "output"}</title></circle>`;
  }
  svg.setAttribute("width", outX + (shown ? 110 : 20)); svg.setAttribute("height", net.style.height);
  svg.innerHTML = paths;
}

// ---------------------------------------------------------------- the step view
// Which numbers the stage shows: values of layers 0..valuesTo, adjoints of layers adjointsFrom..
// (and the gradients of the weights into them). null: no step view.
function stageShown() {
  if (!explained || !frame) return null;
  const n = explained.layers.length;
  if (stage < n) return {valuesTo: stage, adjointsFrom: Infinity};
  return {valuesTo: n - 1, adjointsFrom: 2 * n - 1 - stage};
}

// Each unit's value (black) and adjoint dJ/d(unit) (red) next to it on the diagram; the output
// units also show their softmax probability.
function unitAnnotations(sizes, outX, outs, shown) {
  let out = "";
  const n = explained.layers.length;
  explained.layers.forEach((layer, L) => {
    const last = L === n - 1, sym = last ? "s" : L === 0 ? "x" : layer.name.replace(/\d+$/, "");
    layer.value.forEach((v, j) => {
      // beside a unit: its value at the top, its adjoint at the bottom; beside an output unit
      // (a small circle) three lines: score, probability, adjoint
      const x = last ? outX + 20 : L * COL + UNIT + 3, y = last ? j * ROW + UNIT / 2 - 9 : j * ROW + 10;
      if (L <= shown.valuesTo) {
        out += `<text class="val" x="${x}" y="${y}"><tspan class="sym">${sym}=</tspan>` +
          `<tspan data-testid="unit-value-${L}-${j}">${fmt7(v)}</tspan></text>`;
        if (last) out += `<text class="val" x="${x}" y="${y + 11}"><tspan class="sym">\u0177=</tspan>` +
          `<tspan data-testid="unit-prob-${j}">${fmt7(layer.prob[j])}</tspan></text>`;
      }
      if (L >= shown.adjointsFrom) {
        out += `<text class="adj" x="${x}" y="${last ? y + 22 : j * ROW + UNIT - 1}"><tspan class="sym">\u2202J/\u2202${sym}=</tspan>` +
          `<tspan data-testid="unit-adjoint-${L}-${j}">${fmt7(layer.adjoint[j])}</tspan></text>`;
      }
    });
  });
  return out;
}

function drawStep() {
  const on = !!explained;
  $("stepper").hidden = !on;
  if (!on) { $("weight-trace").innerHTML = ""; if (frame && config) drawNetwork(); return; }
  const n = explained.layers.length, last = 2 * n - 1;
  stage = Math.max(0, Math.min(last, stage));
  $("step-backward").disabled = stage === 0;
  $("step-forward").disabled = stage === last;
  const L = stage < n ? stage : 2 * n - 1 - stage, hidden = L > 0 && L < n - 1;
  const z = explained.layers[L].name, a = z.replace(/^z/, "a"), b = L - 1 === 0 ? "x" : L > 0 ? explained.layers[L - 1].name : "";
  const text = stage < n
    ? (L === 0 ? `forward, input: x, the features of example ${explained.index} (label ${explained.label})`
      : hidden ? `forward, layer ${L}: ${a} = W${L} ${b} + b${L}, ${z} = \u03c6(${a})`
      : `forward, output: s = W${L} ${b} + b${L}, \u0177 = ${explained.yhat_rule}, J = ${explained.loss_rule} = ${fmt7(explained.loss)}`)
    : (L === n - 1 ? `backward, output: \u2202J/\u2202s = ${explained.ds_rule}; on the links \u2202J/\u2202W${L} = \u2202J/\u2202s ${b}\u1d40`
      : hidden ? `backward, layer ${L}: \u2202J/\u2202${z} = W${L + 1}\u1d40 \u2202J/\u2202(layer ${L + 1}), \u2202J/\u2202${a} = \u2202J/\u2202${z} \u2299 \u03c6\u2032(${a}); on the links \u2202J/\u2202W${L} = \u2202J/\u2202${a} ${b}\u1d40`
      : `backward, input: \u2202J/\u2202x = W1\u1d40 \u2202J/\u2202(layer 1)`);
  $("step-stage").textContent = `${stage + 1}/${last + 1} ${text}`;
  if (frame && config) drawNetwork();
  drawTrace();
}

// The trace table of the selected weight W_L[j, i], in explain_step's layout (forward, backward,
// update): every number is explain_step's, sent by the server; this only lays them out.
function drawTrace() {
  const box = $("weight-trace");
  if (!explained || !selected) { box.innerHTML = ""; return; }
  const [L, j, i] = selected, ex = explained, n = ex.layers.length, out = L === n - 1;
  const lay = ex.layers[L], below = ex.layers[L - 1], link = ex.links[L - 1];
  const h = `${below.name}[${i}]`, z = lay.name, a = out ? "s" : z.replace(/^z/, "a"), w = `W${L}[${j},${i}]`;
  const vec = (v) => "(" + v.map(fmt7).join(", ") + ")";
  const rows = [["Forward pass"],
    [h, L === 1 ? `feature ${i} of the example` : `unit ${i} of layer ${L - 1}: the link's input`, fmt7(below.value[i])],
    [w, "the weight", fmt7(link.weight[j][i])]];
  if (link.bias) rows.push([`b${L}[${j}]`, "the bias", fmt7(link.bias[j])]);
  rows.push([`${a}[${j}]`, `\u03a3\u1d62 W${L}[${j},i] ${below.name}[i] + b${L}[${j}]`, fmt7(lay.pre[j])]);
  if (!out && z !== a) rows.push([`${z}[${j}]`, `\u03c6(${a}[${j}])`, fmt7(lay.value[j])]);
  rows.push(["\u0177", ex.yhat_rule, vec(ex.layers[n - 1].prob)], ["J", ex.loss_rule, fmt7(ex.loss)]);
  rows.push(["Backward pass"], ["\u2202J/\u2202s", ex.ds_rule, vec(ex.layers[n - 1].adjoint)]);
  if (!out) {
    const next = ex.layers[L + 1], nextA = L + 1 === n - 1 ? "s" : next.name.replace(/^z/, "a");
    if (nextA !== "s") rows.push([`\u2202J/\u2202${nextA}`, `layer ${L + 1}'s deltas`, vec(next.delta)]);
    rows.push([`\u2202J/\u2202${z}[${j}]`, `\u03a3\u2096 W${L + 1}[k,${j}] \u2202J/\u2202${nextA}[k]`, fmt7(lay.adjoint[j])]);
    if (z !== a) rows.push([`\u2202J/\u2202${a}[${j}]`, `\u2202J/\u2202${z}[${j}] \u00b7 \u03c6\u2032(${a}[${j}])`, fmt7(lay.delta[j])]);
  }
  rows.push([`\u2202J/\u2202${w}`, `\u2202J/\u2202${a}[${j}] \u00b7 ${h}`, fmt7(link.grad[j][i]), "trace-grad"]);
  rows.push([`SGD update (lr = ${ex.lr})`], [`${w} new`, `${w} \u2212 lr \u00b7 \u2202J/\u2202${w}`, fmt7(link.new[j][i]), "trace-new"]);
  const esc = (t) => String(t).replace(/&/g, "&amp;").replace(/</g, "&lt;");
  box.innerHTML = `<table class="trace"><caption>the weight ${esc(w)}: click a link to trace another</caption>` +
    rows.map((r) => r.length === 1 ? `<tr><th colspan="3">${esc(r[0])}</th></tr>`
      : `<tr><td>${esc(r[0])}</td><td>${esc(r[1])}</td><td${r[3] ? ` data-testid="${r[3]}"` : ""}>${esc(r[2])}</td></tr>`).join("") +
    "</table>";
}

// The step view ends when the weights or the setup change (its numbers would no longer be theirs).
function closeStep() {
  if (!explained) return;
  explained = null; selected = null;
  drawStep();
}

// ---------------------------------------------------------------- controls -> messages
function showConfig() {
  for (const k of STR) if ($(k)) $(k).value = config[k];
  const lr = $("learning_rate"), rr = $("reg_rate");
  for (const [sel, v] of [[lr, config.learning_rate], [rr, config.reg_rate]]) {
    if (![...sel.options].some((o) => Number(o.value) === v)) sel.add(new Option(String(v)));
    sel.value = [...sel.options].find((o) => Number(o.value) === v).value;
  }
  $("noise").value = config.noise; $("noise_out").textContent = config.noise;
  $("train_ratio").value = config.train_ratio; $("train_ratio_out").textContent = config.train_ratio;
  $("n").value = config.n; $("batch_size").value = config.batch_size; $("classes").value = String(config.classes);
  if (document.activeElement !== $("hidden")) $("hidden").value = config.hidden.join(",");
  if (document.activeElement !== $("activations")) $("activations").value = config.activations.join(",");
  $("dataset").querySelector("option[value=custom]").disabled = config.dataset !== "custom";
  const box = $("features");
  if (!box.children.length) {
    for (const f of FEATURES) {
      const l = document.createElement("label");
      l.innerHTML = `<input type="checkbox" value="${f}" data-testid="feature-${f}"> ${FEATURE_LABELS[f]}`;
      box.appendChild(l);
    }
    box.addEventListener("change", () => {
      const chosen = [...box.querySelectorAll("input:checked")].map((i) => i.value);
      if (chosen.length) change({features: chosen}); else showConfig();
    });
  }
  for (const i of box.querySelectorAll("input")) i.checked = config.features.includes(i.value);
  writeHash();
  draw();
}

function setPlaying(on) {
  const start = on && !playing;
  playing = on;
  if (on) closeStep();
  $("play").classList.toggle("active", on);
  if (start) send({type: "step", n: STEPS_PER_FRAME});
}

function bind() {
  PRESETS.forEach(([label], i) => $("preset").add(new Option(label, String(i))));
  $("preset").addEventListener("change", () => {
    const p = PRESETS[Number($("preset").value)];
    if (!$("preset").value || !p) return;
    setPlaying(false);
    $("preset-note").textContent = p[2];
    change(p[1]);
  });
  for (const k of STR) $(k).addEventListener("change", () => change({[k]: $(k).value}));
  for (const k of ["learning_rate", "reg_rate", "noise", "train_ratio", "n", "batch_size"]) {
    $(k).addEventListener("change", () => {
      const v = Number($(k).value);
      if (isFinite(v)) change({[k]: v});
    });
  }
  $("classes").addEventListener("change", () => {
    // more than two classes: one output per class and softmax cross-entropy; xor has two classes
    const k = Number($("classes").value), changes = {classes: k}, notes = [];
    if (k > 2 && config.loss !== "softmax_ce") { changes.loss = "softmax_ce"; notes.push("the loss is now softmax cross-entropy"); }
    if (k > 2 && config.dataset === "xor") { changes.dataset = "gaussians"; notes.push("xor has two classes: gaussians"); }
    $("classes-note").textContent = notes.length ? `${k} classes: ${notes.join("; ")}.` : "";
    change(changes);
  });
  $("hidden").addEventListener("change", () => {
    const layers = parseLayers($("hidden").value);
    if (!layers.every((h) => Number.isInteger(h))) return showError("hidden layers: whole numbers separated by commas, such as 4,2");
    // per-layer activations that no longer fit the layers go back to the one activation
    const keep = config.activations.length === layers.length;
    change(keep ? {hidden: layers} : {hidden: layers, activations: []});
  });
  $("activations").addEventListener("change", () => {
    change({activations: $("activations").value.split(",").map((a) => a.trim()).filter((a) => a)});
  });
  $("play").addEventListener("click", () => setPlaying(true));
  $("pause").addEventListener("click", () => setPlaying(false));
  $("step").addEventListener("click", () => {
    setPlaying(false);
    closeStep();
    const n = data ? Math.min(1000, Math.ceil(data.train.length / config.batch_size)) : 1;
    send({type: "step", n});
  });
  $("reset").addEventListener("click", () => { curve = []; closeStep(); send({type: "reset"}); });
  $("regenerate").addEventListener("click", () => { closeStep(); send({type: "regenerate"}); });
  $("show_test").addEventListener("change", draw);
  $("discretize").addEventListener("change", draw);
  $("upload").addEventListener("change", async () => {
    const file = $("upload").files[0];
    if (!file) return;
    if (file.size > 256 * 1024) return showError("the CSV is larger than 256 KiB");
    closeStep();
    send({type: "upload", csv: await file.text()});
  });
  $("explain").addEventListener("click", () => { setPlaying(false); send({type: "explain", index: Number($("example").value)}); });
  $("step-forward").addEventListener("click", () => { stage += 1; drawStep(); });
  $("step-backward").addEventListener("click", () => { stage -= 1; drawStep(); });
  $("step-all").addEventListener("click", () => { stage = Infinity; drawStep(); });
  $("step-close").addEventListener("click", closeStep);
  $("network").addEventListener("click", (ev) => {
    const p = ev.target.closest("path");
    if (!p) return;
    if (explained) {  // the step view: a click picks the weight to trace
      selected = [Number(p.dataset.l) + 1, Number(p.dataset.to), Number(p.dataset.from)];
      return drawStep();
    }
    const text = prompt("new weight", p.querySelector("title").textContent.replace("weight ", ""));
    if (text === null || !isFinite(Number(text)) || text.trim() === "") return;
    closeStep();
    send({type: "set_weight", layer: Number(p.dataset.l), to: Number(p.dataset.to), from: Number(p.dataset.from), value: Number(text)});
  });
  window.addEventListener("hashchange", () => {
    const wanted = readHash();
    if (Object.keys(wanted).length) change(wanted);
  });
}

bind();
connect();
