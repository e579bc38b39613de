// One shared tooltip that follows the pointer: show(event, text) and hide().

const tip = () => document.getElementById("tooltip");

export function show(event, text) {
  const t = tip();
  t.textContent = text;
  t.hidden = false;
  const pad = 14;
  const { innerWidth: W } = window;
  const x = Math.min(event.clientX + pad, W - t.offsetWidth - 8);
  t.style.left = `${Math.max(8, x)}px`;
  t.style.top = `${event.clientY + pad}px`;
}

export function hide() {
  tip().hidden = true;
}

// Tooltips on an element: text(event) gives the text for the pointer's position (null: none).
export function attach(element, text) {
  element.addEventListener("pointermove", (e) => {
    const t = text(e);
    if (t === null) hide(); else show(e, t);
  });
  element.addEventListener("pointerleave", hide);
}
