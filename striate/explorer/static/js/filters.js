// View 4, hand-made filters: striate.filters' kernels, each applied by the server to a sample
// picture or to your photo (GET /api/filters?sample=, POST /api/filters), shown beside its kernel.

import { getJSON, postImage } from "./api.js";
import { css, diverging, fmt, ink, span } from "./colors.js";

const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};

function kernelTable(kernel) {
  const t = el("table", "matrix kernel");
  const scale = span(kernel);
  const digits = kernel.flat().every((v) => Number.isInteger(v)) ? 0 : 2;
  for (const row of kernel) {
    const tr = el("tr");
    for (const v of row) {
      const td = el("td", "", fmt(v, digits));
      const rgb = diverging(v, scale);
      td.style.background = css(rgb);
      td.style.color = ink(rgb);
      tr.append(td);
    }
    t.append(tr);
  }
  return t;
}

function card(f) {
  const c = el("article", "filter");
  c.append(el("h3", "", f.name), el("p", "muted", f.short));
  const body = el("div", "filter-body");
  const img = el("img");
  img.src = f.image;
  img.alt = `${f.name} applied to the picture`;
  body.append(img);
  if (f.kernel && f.kernel.length <= 5) body.append(kernelTable(f.kernel));
  else if (f.kernel) body.append(el("p", "muted small", `${f.kernel.length}×${f.kernel[0].length} kernel`));
  else if (f.combines) body.append(el("p", "muted small", `√(${f.combines[0]}² + ${f.combines[1]}²)`));
  c.append(body);
  c.title = f.description;
  return c;
}

export class Filters {
  constructor(root) {
    this.grid = root.querySelector("#filter-grid");
    this.select = root.querySelector("#sample");
    root.querySelector("#photo").addEventListener("change", (e) => {
      const file = e.target.files[0];
      if (file) this.show(() => postImage("/api/filters", file));
    });
    this.select.addEventListener("change", () => this.showSample(this.select.value));
  }

  async start() {
    const { samples } = await getJSON("/api/samples");
    for (const s of samples) {
      const o = el("option", "", `${s.name}: ${s.title}`);
      o.value = s.name;
      this.select.append(o);
    }
    if (samples.length) await this.showSample(samples[0].name);
  }

  showSample(name) {
    return this.show(() => getJSON(`/api/filters?sample=${encodeURIComponent(name)}`));
  }

  async show(load) {
    this.grid.classList.add("loading");
    try {
      const data = await load();
      const original = { name: "picture", short: `your picture, ${data.shape.join("×")}, grayscale`, image: data.image,
        kernel: null, combines: null, description: "the input" };
      this.grid.replaceChildren(card(original), ...data.filters.map(card));
    } catch (err) {
      this.grid.replaceChildren(el("p", "message error", err.message));
    } finally {
      this.grid.classList.remove("loading");
    }
  }
}
