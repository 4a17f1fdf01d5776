// Step 1: paint the coarse parts into the 256x256 label map of the person box.
// Every change is saved as a draft a moment later (and the page warns before leaving unsaved work).
"use strict";

const AUTOSAVE_MS = 800;

function buildPartList() {
  const ol = $("part-list");
  ol.innerHTML = "";
  state.parts.names.forEach((name, i) => {
    const li = document.createElement("li");
    li.dataset.part = i + 1;
    const sw = document.createElement("span");
    sw.className = "swatch";
    sw.style.background = "rgb(" + state.parts.colors[i].join(",") + ")";
    const key = i < 9 ? String(i + 1) : i === 9 ? "0" : "\u21e7" + (i - 9);
    li.append(sw, document.createTextNode(key + " " + name));
    li.onclick = () => selectPart(i + 1);
    ol.append(li);
  });
  selectPart(state.part);
}

function selectPart(k) {
  state.part = Math.max(1, Math.min(14, k));
  for (const li of $("part-list").children) li.classList.toggle("active", Number(li.dataset.part) === state.part);
}

function selectTool(tool) {
  state.tool = tool;
  state.poly = [];
  for (const b of document.querySelectorAll(".tool")) b.classList.toggle("active", b.dataset.tool === tool);
  $("part-canvas").classList.toggle("brush", tool !== "poly");
  if (state.task && state.task.stage === "parts") drawParts();
}

async function loadLabels(personId) {
  const lab = await api("GET", "/api/persons/" + personId + "/labels");
  state.labels = Uint8Array.from(atob(lab.labels), (c) => c.charCodeAt(0));
  state.labelsFor = personId;
}

async function showParts(t) {
  await loadLabels(t.person_id);
  state.history = [];
  state.poly = [];
  state.polys = []; // the polygons drawn since the person was opened: editable (polygons.js)
  state.selPoly = state.selCorner = state.dragCorner = -1;
  state.dirty = false;
  $("task-progress").textContent = "";
  $("btn-boxes-edit").hidden = !t.boxed_by_owner;
  showStep("parts");
  state.vpParts.fit(personRect(0.05));
  if (!$("diagram").src) $("diagram").src = URL.createObjectURL(await (await fetch("/api/diagram.png",
    { headers: { Authorization: "Bearer " + state.token } })).blob());
}

function labelsCanvas(alpha) {
  const c = document.createElement("canvas");
  c.width = S; c.height = S;
  const cx = c.getContext("2d");
  const im = cx.createImageData(S, S);
  const cols = state.parts.colors;
  for (let i = 0; i < S * S; i++) {
    const k = state.labels[i];
    if (!k) continue;
    const col = cols[k - 1];
    im.data[4 * i] = col[0]; im.data[4 * i + 1] = col[1]; im.data[4 * i + 2] = col[2]; im.data[4 * i + 3] = alpha;
  }
  cx.putImageData(im, 0, 0);
  return c;
}

// box point (0..256 grid) <-> image pixels
function gridToImage(gx, gy) {
  const [bx, by, bw, bh] = state.task.bbox;
  return [bx + gx * bw / S, by + gy * bh / S];
}

function drawParts() {
  const vp = state.vpParts, ctx = vp.begin();
  const [bx, by, bw, bh] = state.task.bbox;
  ctx.drawImage(state.image.img, 0, 0);
  if (state.showLabels) {
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(labelsCanvas(140), bx, by, bw, bh);
    ctx.imageSmoothingEnabled = true;
  }
  const px = 1 / vp.scale; // one screen pixel in image units
  ctx.strokeStyle = "#ff0";
  ctx.lineWidth = px;
  ctx.strokeRect(bx, by, bw, bh);
  for (const q of state.task.points) { // answers kept if they stay inside their part
    if (q.status === "todo") continue;
    const [x, y] = gridToImage(q.x, q.y);
    ctx.fillStyle = state.labels[Math.floor(q.y) * S + Math.floor(q.x)] === q.part ? "#0c0" : "#e00";
    ctx.beginPath(); ctx.arc(x, y, 3 * px, 0, 2 * Math.PI); ctx.fill();
  }
  if (state.tool === "poly") drawPolygons(ctx, px);
  if (state.poly.length) {
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = 1.5 * px;
    ctx.beginPath();
    state.poly.forEach(([gx, gy], i) => { const [x, y] = gridToImage(gx, gy); if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y); });
    if (state.cursor) ctx.lineTo(...gridToImage(...state.cursor));
    ctx.stroke();
  }
  if (state.cursor && state.tool !== "poly") { // the brush at its real size: a disc of the label grid
    const [x, y] = gridToImage(...state.cursor);
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = 1.5 * px;
    ctx.beginPath();
    ctx.ellipse(x, y, state.brush * bw / S, state.brush * bh / S, 0, 0, 2 * Math.PI);
    ctx.stroke();
    ctx.strokeStyle = "#000";
    ctx.lineWidth = px;
    ctx.stroke();
  }
}

function gridPoint(ev) {
  const [x, y] = state.vpParts.toImage(ev);
  const [bx, by, bw, bh] = state.task.bbox;
  return [(x - bx) * S / bw, (y - by) * S / bh];
}

// may pixel i take value v when painting part `part`? With "keep other parts" only unpainted
// pixels and that part change.
function writable(i, value, part = state.part) {
  if (!state.protect) return true;
  const k = state.labels[i];
  return value === 0 ? k === part : k === 0 || k === part;
}

function paintDisc(gx, gy, value) {
  const r = state.brush;
  for (let y = Math.max(0, Math.floor(gy - r)); y <= Math.min(S - 1, Math.ceil(gy + r)); y++) {
    for (let x = Math.max(0, Math.floor(gx - r)); x <= Math.min(S - 1, Math.ceil(gx + r)); x++) {
      if ((x + 0.5 - gx) ** 2 + (y + 0.5 - gy) ** 2 <= r * r && writable(y * S + x, value)) state.labels[y * S + x] = value;
    }
  }
}

function paintLine(a, b, value) {
  const n = Math.max(1, Math.ceil(Math.hypot(b[0] - a[0], b[1] - a[1]) / Math.max(1, state.brush / 2)));
  for (let i = 0; i <= n; i++) paintDisc(a[0] + (b[0] - a[0]) * i / n, a[1] + (b[1] - a[1]) * i / n, value);
}

function pushHistory() {
  state.history.push({ labels: state.labels.slice(), polys: state.polys.slice() });
  if (state.history.length > 50) state.history.shift();
}

function changed() {
  state.dirty = true;
  $("save-state").textContent = "unsaved";
  $("save-state").className = "dirty";
  clearTimeout(state.autosave);
  state.autosave = setTimeout(saveDraft, AUTOSAVE_MS);
}

function labelsB64() {
  let bin = "";
  for (let i = 0; i < state.labels.length; i += 8192) bin += String.fromCharCode.apply(null, state.labels.subarray(i, i + 8192));
  return btoa(bin);
}

async function saveDraft() {
  if (!state.dirty || !state.task || state.task.stage !== "parts") return;
  const pid = state.task.person_id, snapshot = state.history.length;
  try {
    await api("PUT", "/api/persons/" + pid + "/draft", { labels: labelsB64() });
    if (state.task.person_id === pid && state.history.length === snapshot) {
      state.dirty = false;
      $("save-state").textContent = "saved";
      $("save-state").className = "";
    }
  } catch (e) { say("autosave failed: " + e.message, true); }
}

function undoParts() {
  if (state.poly.length) { state.poly = []; drawParts(); return; }
  const prev = state.history.pop();
  if (!prev) return;
  state.labels = prev.labels;
  state.polys = prev.polys;
  state.selPoly = Math.min(state.selPoly, state.polys.length - 1);
  state.selCorner = -1;
  changed();
  drawParts();
}

function closePolygon() {
  if (state.poly.length >= 3) addPolygon(state.poly);
  state.poly = [];
  drawParts();
}

function setupParts() {
  const c = $("part-canvas");
  state.vpParts = new Viewport(c, () => { if (state.task && state.task.stage === "parts") drawParts(); });
  c.classList.add("brush");
  c.addEventListener("pointerdown", (ev) => {
    if (ev.button !== 0) return;
    const p = gridPoint(ev);
    if (state.tool === "poly") {
      if (!state.poly.length && polygonPointerDown(p)) {
        if (state.dragCorner >= 0) c.setPointerCapture(ev.pointerId);
        return;
      }
      state.poly.push(p);
      drawParts();
      return;
    }
    pushHistory();
    state.painting = p;
    paintDisc(p[0], p[1], state.tool === "erase" ? 0 : state.part);
    c.setPointerCapture(ev.pointerId);
    drawParts();
  });
  c.addEventListener("pointermove", (ev) => {
    const p = gridPoint(ev);
    state.cursor = p;
    if (state.dragCorner >= 0) dragCornerTo(p);
    if (state.painting) {
      paintLine(state.painting, p, state.tool === "erase" ? 0 : state.part);
      state.painting = p;
    }
    drawParts();
  });
  c.addEventListener("pointerup", () => {
    if (state.painting) { state.painting = false; changed(); }
    if (state.dragCorner >= 0) { state.dragCorner = -1; if (state.dragMoved) changed(); }
  });
  c.addEventListener("pointerleave", () => { state.cursor = null; if (state.task && state.task.stage === "parts") drawParts(); });
  c.addEventListener("dblclick", () => { if (state.tool === "poly") { state.poly.pop(); closePolygon(); } });
  for (const b of document.querySelectorAll(".tool")) b.onclick = () => selectTool(b.dataset.tool);
  $("brush-size").oninput = (ev) => { state.brush = Number(ev.target.value); };
  $("protect").onchange = (ev) => { state.protect = ev.target.checked; };
  $("btn-parts-undo").onclick = undoParts;
  $("btn-parts-save").onclick = saveParts;
}

function partsKey(ev, ctrlZ) {
  if (ctrlZ) { undoParts(); ev.preventDefault(); return; }
  const digit = ev.code.startsWith("Digit") ? Number(ev.code.slice(5)) : NaN;
  if (!isNaN(digit) && ev.shiftKey && digit >= 1 && digit <= 4) selectPart(10 + digit);
  else if (!isNaN(digit) && !ev.shiftKey) selectPart(digit === 0 ? 10 : digit);
  else if (ev.key === ",") selectPart(state.part - 1);
  else if (ev.key === ".") selectPart(state.part + 1);
  else if (ev.key === "b") selectTool("brush");
  else if (ev.key === "p") selectTool("poly");
  else if (ev.key === "e") selectTool("erase");
  else if (ev.key === "f") state.vpParts.refit();
  else if (ev.key === "k") { state.protect = !state.protect; $("protect").checked = state.protect; }
  else if (ev.key === "[") { state.brush = Math.max(1, state.brush - 1); $("brush-size").value = state.brush; drawParts(); }
  else if (ev.key === "]") { state.brush = Math.min(40, state.brush + 1); $("brush-size").value = state.brush; drawParts(); }
  else if (ev.key === "h") { state.showLabels = !state.showLabels; drawParts(); }
  else if (ev.key === "Escape") { state.poly = []; state.selPoly = state.selCorner = -1; drawParts(); }
  else if ((ev.key === "Delete" || ev.key === "Backspace") && state.tool === "poly") { if (deleteSelectedCorner()) ev.preventDefault(); }
  else if (ev.key === "Enter") { if (state.tool === "poly" && state.poly.length) closePolygon(); else saveParts(); }
}

async function saveParts() {
  if (state.busy) return;
  const counts = new Array(15).fill(0);
  for (const v of state.labels) counts[v]++;
  const empty = !counts.slice(1).some((n) => n >= 10); // the server samples parts of 10+ pixels
  if (empty && !confirm("Nothing is painted. Close this person as showing no body part? (The owner can reopen it.)")) return;
  state.busy = true;
  clearTimeout(state.autosave);
  try {
    const t = await api("PUT", "/api/persons/" + state.task.person_id + "/parts", { labels: labelsB64(), confirm_empty: empty });
    state.dirty = false;
    state.busy = false;
    const todo = t.points.filter((p) => p.status === "todo").length;
    say(todo + " points to place" + (t.points.length > todo ? " (" + (t.points.length - todo) + " answers kept)" : ""));
    await showTask(t);
  } catch (e) { say(e.message, true); } finally { state.busy = false; }
}
