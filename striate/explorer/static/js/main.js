// The page: find out whether a trained run is loaded, then start each view.
// Views: overview.js (1), unit.js (2), playground.js (3), filters.js (4), run.js (5).

import { getJSON, postImage, throttled } from "./api.js";
import { DrawingPad } from "./draw.js";
import { Filters } from "./filters.js";
import { Overview } from "./overview.js";
import { Playground } from "./playground.js";
import { RunView } from "./run.js";
import { showUnit } from "./unit.js";

const $ = (selector) => document.querySelector(selector);
const DRAW_MS = 120;                // at most one forward pass per this many ms while drawing

// image: what the layers show (a Blob); asIs: it is a test image, given to the model as it is
const page = { image: null, asIs: false, overview: null, selected: null, pad: null, testSeed: 0 };

function say(text, error = false) {
  const m = $("#forward-message");
  m.textContent = text;
  m.classList.toggle("error", error);
}

// Send an image (Blob) through the model; redraw every layer and the probabilities.
async function forward(blob, asIs = false) {
  page.image = blob;
  page.asIs = asIs;
  let result;
  try {
    result = await postImage(`/api/forward${asIs ? "?as_is=1" : ""}`, blob);
  } catch (err) {
    say(err.message, true);
    return;
  }
  if (blob !== page.image) return;              // a newer image was sent meanwhile
  say("");
  page.overview.update(result);
  $("#predicted").textContent = result.class;
  $("#confidence").textContent = `${(100 * result.probabilities[result.predicted]).toFixed(1)}%`;
  if (page.selected) unit(page.selected);
}

function unit(sel) {
  if (!page.overview.last) return null;          // nothing forwarded yet
  page.selected = sel;
  const layer = page.overview.last.layers.find((l) => l.name === sel.layer);
  const value = layer ? layer.values[sel.channel][sel.y][sel.x] : null;
  return showUnit($("#unit-body"), page.image, page.asIs, sel, value);
}

function tabs() {
  const names = ["draw", "upload", "test"];
  for (const name of names) {
    $(`#tab-${name}`).addEventListener("click", () => {
      for (const other of names) {
        $(`#tab-${other}`).setAttribute("aria-selected", String(other === name));
        $(`#panel-${other}`).hidden = other !== name;
      }
    });
  }
}

async function useTestImage(index) {
  const blob = await (await fetch(`/api/test-images/${index}.png`)).blob();
  page.pad.show(await createImageBitmap(blob));
  await forward(blob, true);
}

async function testImages() {
  const { available, images } = await getJSON(`/api/test-images?count=12&seed=${page.testSeed}`);
  const box = $("#test-thumbs");
  if (!available) {
    box.replaceChildren("The test set is not on this machine.");
    $("#more-tests").hidden = true;
    return null;
  }
  box.replaceChildren(...images.map((im) => {
    const b = document.createElement("button");
    b.className = "thumb-button";
    b.setAttribute("aria-label", `test image ${im.index}, a ${im.class}`);
    const img = document.createElement("img");
    img.src = `/api/test-images/${im.index}.png`;
    img.alt = "";
    img.className = "thumb";
    b.append(img);
    b.addEventListener("click", () => useTestImage(im.index));
    return b;
  }));
  return images;
}

async function startOverview(model) {
  page.overview = new Overview($("#layers"), $("#probs"), model, (sel) => {
    unit(sel);
  });
  const send = throttled(async () => forward(await page.pad.toBlob()), DRAW_MS);
  page.pad = new DrawingPad($("#pad"), () => { if (page.pad.inked) send(); });
  $("#clear").addEventListener("click", () => {
    page.pad.clear();
    say("Draw a digit on the black square.");
  });
  $("#upload").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    if (!file) return;
    const picture = await createImageBitmap(file).catch(() => null);     // null: the server will say why
    if (picture) page.pad.show(picture); else page.pad.clear();
    await forward(file);
  });
  $("#more-tests").addEventListener("click", () => { page.testSeed += 1; testImages(); });
  tabs();
  const images = await testImages();
  if (images && images.length) await useTestImage(images[0].index);
  else say("Draw a digit on the black square.");
}

function noRun(train) {
  const box = $("#no-run");
  box.hidden = false;
  box.innerHTML = "";
  box.append("No trained run is loaded, so this part needs one. Train one (a minute or two), then start the explorer again:");
  const pre = document.createElement("pre");
  pre.textContent = `${train}\nstriate serve`;
  box.append(pre);
  $("#overview-body").hidden = true;
  $("#unit-body").replaceChildren(Object.assign(document.createElement("p"), {
    className: "empty", textContent: "A unit's arithmetic needs a trained network; the playground below needs none." }));
  $("#run-body").hidden = true;
  $("#run-status").replaceChildren(`No run yet: ${train}`);
}

async function main() {
  new Playground($("#playground"));
  new Filters($("#filters")).start();
  const info = await getJSON("/api/run");
  if (!info.available) {
    noRun(info.train);
    return;
  }
  $("#run-name").textContent = `${info.title || info.name}`;
  const model = await getJSON("/api/model");
  await startOverview(model);
  new RunView($("#run")).start(info);
}

main();
