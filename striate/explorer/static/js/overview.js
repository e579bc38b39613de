// View 1, the overview: one row per layer (name, type, shape, parameters), one heatmap per
// channel, and the class probabilities. Built once from /api/model, redrawn from each
// /api/forward answer. Clicking a unit of a conv or pooling map calls onUnit.

import { drawMap, fmt, span } from "./colors.js";
import { attach } from "./tooltip.js";

const CLICKABLE = new Set(["Conv2d", "PartialConv2d", "MaxPool2d", "AvgPool2d", "SumPool2d", "MinPool2d",
  "L2Pool2d", "LPPool2d"]);
const VECTOR_COLUMNS = 30;         // a flat layer (F,) is drawn as rows of this many cells

const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};

// Screen pixels per value: small maps get bigger cells, so every map is about 64-84 px wide.
const zoom = (h) => Math.max(2, Math.ceil(64 / h));

// A layer drawn as maps (C, H, W), or as one strip of numbers: (F,), and (C, 1, 1) too.
const isMaps = (shape) => shape.length === 3 && shape[1] * shape[2] > 1;
const flat = (values) => (Array.isArray(values) ? values.flat(Infinity) : [values]);

export class Overview {
  constructor(container, probs, model, onUnit) {
    this.container = container;
    this.probs = probs;
    this.model = model;
    this.onUnit = onUnit;
    this.rows = [];
    this.last = null;
    this.selected = null;
    container.replaceChildren(this.inputRow(), ...model.layers.map((layer) => this.layerRow(layer)));
    this.buildProbabilities();
  }

  inputRow() {
    const row = el("div", "layer");
    row.append(this.heading("input", "the prepared digit", "28×28, white on black, centred by mass", null));
    const maps = el("div", "maps");
    this.inputCanvas = el("canvas", "map");
    this.inputCanvas.style.width = this.inputCanvas.style.height = `${28 * 3}px`;
    maps.append(this.inputCanvas);
    row.append(maps);
    return row;
  }

  heading(name, type, shape, layer) {
    const h = el("div", "layer-head");
    h.append(el("span", "layer-name", name), el("span", "layer-type", type), el("span", "layer-shape", shape));
    if (layer) {
      h.append(el("span", "layer-params", `${layer.parameters.toLocaleString("en")} parameters`));
      if (layer.activation && layer.activation !== "none") h.append(el("span", "layer-act", `then ${layer.activation}`));
    }
    return h;
  }

  layerRow(layer) {
    const row = el("div", "layer");
    row.dataset.layer = layer.name;
    const shape = layer.output_shape.join("×");
    row.append(this.heading(layer.name, layer.type, shape, layer));
    const maps = el("div", "maps");
    const canvases = [];
    if (isMaps(layer.output_shape)) {
      const [C, H] = layer.output_shape;
      const clickable = CLICKABLE.has(layer.type);
      for (let c = 0; c < C; c++) {
        const wrap = el("div", "map-wrap");
        const canvas = el("canvas", clickable ? "map clickable" : "map");
        canvas.style.width = canvas.style.height = `${H * zoom(H)}px`;
        canvas.setAttribute("aria-label", `${layer.name} channel ${c}`);
        canvas.dataset.channel = c;
        if (clickable) canvas.addEventListener("click", (e) => this.click(layer, c, canvas, e));
        attach(canvas, (e) => this.hover(layer, c, canvas, e));
        wrap.append(canvas);
        maps.append(wrap);
        canvases.push(canvas);
      }
    } else {
      const canvas = el("canvas", "map vector");
      const n = layer.output_shape.reduce((a, b) => a * b, 1);
      const cols = Math.min(n, VECTOR_COLUMNS);
      canvas.style.width = `${cols * 9}px`;
      canvas.style.height = `${Math.ceil(n / cols) * 9}px`;
      attach(canvas, (e) => this.hover(layer, 0, canvas, e));
      maps.append(canvas);
      canvases.push(canvas);
    }
    row.append(maps);
    this.rows.push({ layer, canvases });
    return row;
  }

  // Which unit (y, x) of a map the pointer is over.
  unitAt(canvas, e, H, W) {
    const r = canvas.getBoundingClientRect();
    const x = Math.min(W - 1, Math.max(0, Math.floor(((e.clientX - r.left) / r.width) * W)));
    const y = Math.min(H - 1, Math.max(0, Math.floor(((e.clientY - r.top) / r.height) * H)));
    return [y, x];
  }

  hover(layer, c, canvas, e) {
    if (!this.last) return null;
    const values = this.last.layers.find((l) => l.name === layer.name).values;
    if (isMaps(layer.output_shape)) {
      const [, H, W] = layer.output_shape;
      const [y, x] = this.unitAt(canvas, e, H, W);
      return `${layer.name}[${c}, ${y}, ${x}] = ${fmt(values[c][y][x])}`;
    }
    const strip = flat(values), n = strip.length, cols = Math.min(n, VECTOR_COLUMNS);
    const [y, x] = this.unitAt(canvas, e, Math.ceil(n / cols), cols);
    const i = y * cols + x;
    return i < n ? `${layer.name}[${i}] = ${fmt(strip[i])}` : null;
  }

  click(layer, c, canvas, e) {
    const [, H, W] = layer.output_shape;
    const [y, x] = this.unitAt(canvas, e, H, W);
    this.select({ layer: layer.name, channel: c, y, x });
    this.onUnit(this.selected);
  }

  // Outline the selected unit on its map.
  select(sel) {
    this.container.querySelectorAll(".unit-mark").forEach((m) => m.remove());
    this.selected = sel;
    if (!sel) return;
    const row = this.rows.find((r) => r.layer.name === sel.layer);
    if (!row) return;
    const canvas = row.canvases[sel.channel];
    const [, H] = row.layer.output_shape;
    const z = zoom(H);
    const mark = el("div", "unit-mark");
    Object.assign(mark.style, { left: `${sel.x * z - 1}px`, top: `${sel.y * z - 1}px`, width: `${z + 2}px`, height: `${z + 2}px` });
    canvas.parentElement.append(mark);
  }

  update(result) {
    this.last = result;
    drawMap(this.inputCanvas, result.input.values, 1, { gray: true });
    for (const { layer, canvases } of this.rows) {
      const out = result.layers.find((l) => l.name === layer.name);
      const scale = span(out.values);
      if (isMaps(layer.output_shape)) {
        out.values.forEach((plane, c) => drawMap(canvases[c], plane, scale));
      } else {
        const strip = flat(out.values), n = strip.length, cols = Math.min(n, VECTOR_COLUMNS);
        const grid = [];
        for (let i = 0; i < n; i += cols) grid.push(strip.slice(i, i + cols));
        while (grid[grid.length - 1].length < cols) grid[grid.length - 1].push(0);
        drawMap(canvases[0], grid, scale);
      }
    }
    this.showProbabilities(result.probabilities);
  }

  buildProbabilities() {
    this.bars = this.model.classes.map((name) => {
      const row = el("div", "prob");
      const label = el("span", "prob-name", name);
      const track = el("span", "prob-track");
      const bar = el("span", "prob-bar");
      track.append(bar);
      const value = el("span", "prob-value", "");
      row.append(label, track, value);
      this.probs.append(row);
      return { row, bar, value };
    });
  }

  showProbabilities(p) {
    const best = p.indexOf(Math.max(...p));
    p.forEach((v, k) => {
      const b = this.bars[k];
      b.bar.style.width = `${(100 * v).toFixed(1)}%`;
      b.value.textContent = `${(100 * v).toFixed(1)}%`;
      b.row.classList.toggle("best", k === best);
    });
  }
}
