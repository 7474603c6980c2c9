// Replays a lesson widget from frames precomputed when the site was built (website/frames.py):
// no kernel, no network. Each <div class="vaelab-live" data-widget="ID"> gets the controls listed in
// window.vaelabFrames[ID] (set by _static/frames/ID.js); moving one shows the frame stored for the
// controls' values. A widget without frames keeps its note, which links to Binder.
(function () {
  "use strict";

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function build(box, data) {
    const state = data.controls.map((c) => c.start);
    const controls = el("div", "vaelab-live-controls");
    const text = el("div", "vaelab-live-text");
    const figure = el("img", "vaelab-live-figure");
    figure.alt = (box.dataset.title || "widget") + ": the figure for the chosen values";

    function show() {
      const frame = data.frames[state.join(",")];
      if (!frame) {
        text.textContent = "(no frame was precomputed for these values)";
        return;
      }
      if (figure.getAttribute("src") !== frame[0]) figure.setAttribute("src", frame[0]);
      text.innerHTML = frame[1];
      // a control the widget greys out for these values (e.g. K under the standard-normal prior)
      const off = frame[2] || [];
      inputs.forEach((input, j) => { input.disabled = off.includes(j); });
      box.dataset.state = state.join(",");
    }

    const inputs = [];
    data.controls.forEach((c, i) => {
      const wrap = el("label", "vaelab-live-control");
      wrap.dataset.description = c.description;
      wrap.appendChild(el("span", "vaelab-live-label", c.description));
      let input;
      if (c.kind === "select") {
        input = el("select");
        c.labels.forEach((label, j) => {
          const option = el("option", "", label);
          option.value = String(j);
          input.appendChild(option);
        });
        input.value = String(c.start);
        input.addEventListener("change", () => { state[i] = Number(input.value); show(); });
        wrap.appendChild(input);
      } else {
        input = el("input");
        input.type = "range";
        input.min = "0";
        input.max = String(c.labels.length - 1);
        input.step = "1";
        input.value = String(c.start);
        const readout = el("output", "vaelab-live-readout", c.labels[c.start]);
        const move = () => { state[i] = Number(input.value); readout.textContent = c.labels[state[i]]; show(); };
        input.addEventListener("input", move);
        input.addEventListener("change", move);
        wrap.appendChild(input);
        wrap.appendChild(readout);
        if (c.play) {
          const button = el("button", "vaelab-live-play", "▶ play");
          button.type = "button";
          let timer = null;
          button.addEventListener("click", (event) => {
            event.preventDefault();
            if (timer) { clearInterval(timer); timer = null; button.textContent = "▶ play"; return; }
            if (Number(input.value) >= c.labels.length - 1) { input.value = "0"; move(); }
            button.textContent = "❚❚ pause";
            timer = setInterval(() => {
              if (Number(input.value) >= c.labels.length - 1) { clearInterval(timer); timer = null; button.textContent = "▶ play"; return; }
              input.value = String(Number(input.value) + 1);
              move();
            }, 500);
          });
          wrap.appendChild(button);
        }
      }
      input.dataset.description = c.description;
      inputs.push(input);
      controls.appendChild(wrap);
    });
    box.appendChild(controls);
    box.appendChild(text);
    box.appendChild(figure);
    box.classList.add("vaelab-live-ready");
    show();
  }

  function start() {
    const all = window.vaelabFrames || {};
    document.querySelectorAll(".vaelab-live").forEach((box) => {
      const data = all[box.dataset.widget];
      if (data) build(box, data);
      else box.classList.add("vaelab-live-missing");
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
