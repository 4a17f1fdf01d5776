// DensePose annotator front end: plain JS, no libraries, works offline.
// State lives on the server; this file only draws, collects input and calls the JSON API.
"use strict";

const S = 256; // dp_masks resolution: part labels are a 256x256 map inside the person box
const $ = (id) => document.getElementById(id);
const state = {
  token: sessionStorage.getItem("dp-token") || "",
  me: null, parts: null, task: null, image: null,
  labels: null, history: [], part: 1, tool: "brush", brush: 8, showLabels: true,
  poly: [], boxes: [], drag: null, painting: false, busy: false,
};

// ------------------------------------------------------------------ API
async function api(method, path, body) {
  const opts = { method, headers: { Authorization: "Bearer " + state.token } };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  if (r.status === 401) { logout("Your token was not accepted."); throw new Error("unauthorised"); }
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(data.error || r.statusText);
  return data;
}

async function fetchImage(path) {
  const r = await fetch(path, { headers: { Authorization: "Bearer " + state.token } });
  if (!r.ok) throw new Error("could not load " + path);
  const url = URL.createObjectURL(await r.blob());
  const img = new Image();
  img.src = url;
  await img.decode();
  return img;
}

function say(text, isError) {
  $("message").textContent = text || "";
  $("message").className = isError ? "error" : "";
}

// ------------------------------------------------------------------ login
async function login(token) {
  state.token = token;
  try {
    state.me = await api("GET", "/api/me");
  } catch (e) {
    $("login-error").textContent = "Login failed: " + e.message;
    return;
  }
  sessionStorage.setItem("dp-token", token);
  $("login").hidden = true;
  $("task").hidden = false;
  $("btn-logout").hidden = false;
  $("who").textContent = state.me.name + (state.me.is_admin ? " (admin)" : "");
  for (const el of document.querySelectorAll(".admin")) el.hidden = !state.me.is_admin;
  state.parts = await api("GET", "/api/parts");
  buildPartList();
  await nextTask();
}

function logout(msg) {
  sessionStorage.removeItem("dp-token");
  state.token = "";
  $("task").hidden = true;
  $("login").hidden = false;
  $("btn-logout").hidden = true;
  $("who").textContent = "";
  $("login-error").textContent = msg || "";
}

// ------------------------------------------------------------------ tasks
function showStep(name) {
  for (const el of document.querySelectorAll(".step")) el.hidden = el.id !== "step-" + name;
}

async function nextTask() {
  say("");
  const t = await api("POST", "/api/tasks/next");
  await showTask(t);
}

async function showTask(t) {
  state.task = t;
  if (t.kind === "none") { $("task-title").textContent = ""; $("task-progress").textContent = ""; showStep("none"); return; }
  if (!state.image || state.image.id !== t.image_id) {
    state.image = { id: t.image_id, img: await fetchImage("/api/images/" + t.image_id) };
  }
  if (t.kind === "boxes") {
    $("task-title").textContent = "Image " + t.image_id;
    $("task-progress").textContent = "";
    state.boxes = [];
    showStep("boxes");
    drawBoxes();
    return;
  }
  $("task-title").textContent = "Person " + t.person_id + " (image " + t.image_id + ")";
  if (t.stage === "parts") {
    const lab = await api("GET", "/api/persons/" + t.person_id + "/labels");
    state.labels = Uint8Array.from(atob(lab.labels), (c) => c.charCodeAt(0));
    state.history = [];
    state.poly = [];
    $("task-progress").textContent = "";
    showStep("parts");
    drawParts();
  } else if (t.stage === "points") {
    if (!state.labels || state.labelsFor !== t.person_id) {
      const lab = await api("GET", "/api/persons/" + t.person_id + "/labels");
      state.labels = Uint8Array.from(atob(lab.labels), (c) => c.charCodeAt(0));
    }
    state.labelsFor = t.person_id;
    showStep("points");
    await showPoint();
  } else {
    const n = t.points.filter((p) => p.status === "done").length;
    $("done-text").textContent = "Person " + t.person_id + " is done: " + n + " of " + t.points.length + " points placed.";
    $("task-progress").textContent = "";
    showStep("done");
  }
}

// crop of the person box (with a small margin) drawn into a canvas; returns the mapping
function drawCrop(canvas, margin) {
  const t = state.task, img = state.image.img;
  const [bx, by, bw, bh] = t.bbox;
  const mx = bw * margin, my = bh * margin;
  const crop = [bx - mx, by - my, bw + 2 * mx, bh + 2 * my];
  const scale = Math.min(760 / crop[2], 760 / crop[3], 4);
  canvas.width = Math.round(crop[2] * scale);
  canvas.height = Math.round(crop[3] * scale);
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#333";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(img, crop[0], crop[1], crop[2], crop[3], 0, 0, canvas.width, canvas.height);
  // box corner -> canvas: the 256x256 label grid covers the box
  const box = { x: mx * scale, y: my * scale, w: bw * scale, h: bh * scale };
  ctx.strokeStyle = "#ff0";
  ctx.lineWidth = 1;
  ctx.strokeRect(box.x, box.y, box.w, box.h);
  return { ctx, box };
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

// ------------------------------------------------------------------ step 0: boxes
function drawBoxes() {
  const c = $("box-canvas"), img = state.image.img;
  const scale = Math.min(1000 / img.naturalWidth, 760 / img.naturalHeight, 2);
  c.width = Math.round(img.naturalWidth * scale);
  c.height = Math.round(img.naturalHeight * scale);
  state.boxScale = scale;
  const ctx = c.getContext("2d");
  ctx.drawImage(img, 0, 0, c.width, c.height);
  ctx.lineWidth = 2;
  ctx.strokeStyle = "#0f0";
  const all = state.drag ? state.boxes.concat([state.drag]) : state.boxes;
  for (const b of all) ctx.strokeRect(b[0] * scale, b[1] * scale, b[2] * scale, b[3] * scale);
}

function canvasPoint(canvas, ev) {
  const r = canvas.getBoundingClientRect();
  return [(ev.clientX - r.left) * canvas.width / r.width, (ev.clientY - r.top) * canvas.height / r.height];
}

function setupBoxes() {
  const c = $("box-canvas");
  c.addEventListener("pointerdown", (ev) => {
    const [x, y] = canvasPoint(c, ev).map((v) => v / state.boxScale);
    state.dragStart = [x, y];
    state.drag = [x, y, 0, 0];
    c.setPointerCapture(ev.pointerId);
  });
  c.addEventListener("pointermove", (ev) => {
    if (!state.drag) return;
    const [x, y] = canvasPoint(c, ev).map((v) => v / state.boxScale);
    const [x0, y0] = state.dragStart;
    state.drag = [Math.min(x, x0), Math.min(y, y0), Math.abs(x - x0), Math.abs(y - y0)];
    drawBoxes();
  });
  c.addEventListener("pointerup", () => {
    if (state.drag && state.drag[2] >= 4 && state.drag[3] >= 4) state.boxes.push(state.drag);
    state.drag = null;
    drawBoxes();
  });
  $("btn-boxes-undo").onclick = () => { state.boxes.pop(); drawBoxes(); };
  $("btn-boxes-save").onclick = saveBoxes;
}

async function saveBoxes() {
  try {
    await api("POST", "/api/images/" + state.task.image_id + "/boxes", { boxes: state.boxes });
    await nextTask();
  } catch (e) { say(e.message, true); }
}

// ------------------------------------------------------------------ step 1: parts
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
  if (state.task && state.task.stage === "parts") drawParts();
}

function drawParts() {
  const { ctx, box } = drawCrop($("part-canvas"), 0.05);
  state.partBox = box;
  if (state.showLabels) {
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(labelsCanvas(140), box.x, box.y, box.w, box.h);
    ctx.imageSmoothingEnabled = true;
  }
  if (state.poly.length) {
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    state.poly.forEach(([x, y], i) => {
      const cx = box.x + x * box.w / S, cy = box.y + y * box.h / S;
      if (i === 0) ctx.moveTo(cx, cy); else ctx.lineTo(cx, cy);
    });
    ctx.stroke();
  }
}

// canvas event -> label-grid coordinates (0..256 in the box)
function gridPoint(ev) {
  const [x, y] = canvasPoint($("part-canvas"), ev);
  const b = state.partBox;
  return [(x - b.x) * S / b.w, (y - b.y) * S / b.h];
}

function paintDisc(gx, gy, value) {
  const r = state.brush;
  for (let y = Math.max(0, Math.floor(gy - r)); y <= Math.min(S - 1, Math.ceil(gy + r)); y++) {
    for (let x = Math.max(0, Math.floor(gx - r)); x <= Math.min(S - 1, Math.ceil(gx + r)); x++) {
      if ((x + 0.5 - gx) ** 2 + (y + 0.5 - gy) ** 2 <= r * r) state.labels[y * S + x] = value;
    }
  }
}

function paintLine(a, b, value) {
  const n = Math.max(1, Math.ceil(Math.hypot(b[0] - a[0], b[1] - a[1]) / Math.max(1, state.brush / 2)));
  for (let i = 0; i <= n; i++) paintDisc(a[0] + (b[0] - a[0]) * i / n, a[1] + (b[1] - a[1]) * i / n, value);
}

// even-odd scanline fill of the polygon at pixel centres
function fillPolygon(poly, value) {
  for (let y = 0; y < S; y++) {
    const cy = y + 0.5, xs = [];
    for (let i = 0; i < poly.length; i++) {
      const [x0, y0] = poly[i], [x1, y1] = poly[(i + 1) % poly.length];
      if ((y0 <= cy) !== (y1 <= cy)) xs.push(x0 + (cy - y0) * (x1 - x0) / (y1 - y0));
    }
    xs.sort((a, b) => a - b);
    for (let k = 0; k + 1 < xs.length; k += 2) {
      for (let x = Math.max(0, Math.ceil(xs[k] - 0.5)); x <= Math.min(S - 1, Math.floor(xs[k + 1] - 0.5)); x++) {
        state.labels[y * S + x] = value;
      }
    }
  }
}

function pushHistory() {
  state.history.push(state.labels.slice());
  if (state.history.length > 50) state.history.shift();
}

function undoParts() {
  if (state.poly.length) { state.poly = []; drawParts(); return; }
  const prev = state.history.pop();
  if (prev) { state.labels = prev; drawParts(); }
}

function closePolygon() {
  if (state.poly.length >= 3) {
    pushHistory();
    fillPolygon(state.poly, state.part);
  }
  state.poly = [];
  drawParts();
}

function setupParts() {
  const c = $("part-canvas");
  c.addEventListener("pointerdown", (ev) => {
    const p = gridPoint(ev);
    if (state.tool === "poly") {
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
    if (!state.painting) return;
    const p = gridPoint(ev);
    paintLine(state.painting, p, state.tool === "erase" ? 0 : state.part);
    state.painting = p;
    drawParts();
  });
  c.addEventListener("pointerup", () => { state.painting = false; });
  c.addEventListener("dblclick", () => { if (state.tool === "poly") { state.poly.pop(); closePolygon(); } });
  for (const b of document.querySelectorAll(".tool")) b.onclick = () => selectTool(b.dataset.tool);
  $("brush-size").oninput = (ev) => { state.brush = Number(ev.target.value); };
  $("btn-parts-undo").onclick = undoParts;
  $("btn-parts-save").onclick = saveParts;
}

async function saveParts() {
  if (state.busy) return;
  state.busy = true;
  try {
    let bin = "";
    for (let i = 0; i < state.labels.length; i += 8192) bin += String.fromCharCode.apply(null, state.labels.subarray(i, i + 8192));
    const t = await api("PUT", "/api/persons/" + state.task.person_id + "/parts", { labels: btoa(bin) });
    state.busy = false;
    say(t.points.length + " points to place");
    await showTask(t);
  } catch (e) { say(e.message, true); } finally { state.busy = false; }
}

// ------------------------------------------------------------------ step 2: points
function currentPoint() {
  return state.task.points.find((p) => p.status === "todo");
}

async function showPoint() {
  const t = state.task, p = currentPoint();
  const answered = t.points.filter((q) => q.status !== "todo").length;
  $("task-progress").textContent = "point " + Math.min(answered + 1, t.points.length) + " / " + t.points.length;
  const { ctx, box } = drawCrop($("point-canvas"), 0.05);
  ctx.globalAlpha = 0.35;
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(labelsCanvas(255), box.x, box.y, box.w, box.h);
  ctx.globalAlpha = 1;
  for (const q of t.points) {
    if (q.status === "todo") continue;
    dot(ctx, box.x + q.x * box.w / S, box.y + q.y * box.h / S, 3, q.status === "done" ? "#0c0" : "#999");
  }
  if (!p) return;
  const cx = box.x + p.x * box.w / S, cy = box.y + p.y * box.h / S;
  ctx.strokeStyle = "#fff"; ctx.lineWidth = 3;
  crosshair(ctx, cx, cy);
  ctx.strokeStyle = "#e00"; ctx.lineWidth = 1.5;
  crosshair(ctx, cx, cy);
  $("point-part").textContent = state.parts.names[p.part - 1];
  await showViews(p.part);
}

function dot(ctx, x, y, r, color) {
  ctx.fillStyle = color;
  ctx.beginPath(); ctx.arc(x, y, r, 0, 2 * Math.PI); ctx.fill();
}

function crosshair(ctx, x, y) {
  ctx.beginPath();
  ctx.arc(x, y, 7, 0, 2 * Math.PI);
  ctx.moveTo(x - 12, y); ctx.lineTo(x - 4, y); ctx.moveTo(x + 4, y); ctx.lineTo(x + 12, y);
  ctx.moveTo(x, y - 12); ctx.lineTo(x, y - 4); ctx.moveTo(x, y + 4); ctx.lineTo(x, y + 12);
  ctx.stroke();
}

async function showViews(part) {
  if (state.viewsPart === part) return;
  const list = await api("GET", "/api/views/" + part);
  const box = $("views");
  box.innerHTML = "";
  for (const v of list.views) {
    const fig = document.createElement("figure");
    const img = await fetchImage(v.url);
    img.dataset.view = v.name;
    img.id = "view-" + v.name;
    img.alt = list.name + ", " + v.name + " view";
    img.addEventListener("click", (ev) => {
      const r = img.getBoundingClientRect();
      clickView(v.name, (ev.clientX - r.left) * img.naturalWidth / r.width, (ev.clientY - r.top) * img.naturalHeight / r.height);
    });
    const cap = document.createElement("figcaption");
    cap.textContent = v.name;
    fig.append(img, cap);
    box.append(fig);
  }
  state.viewsPart = part;
}

async function clickView(view, px, py) {
  const p = currentPoint();
  if (!p || state.busy) return;
  state.busy = true;
  try {
    const r = await api("POST", "/api/points/" + p.id + "/click", { view, px, py });
    markClick(view, px, py);
    say("placed on " + (r.I ? "chart " + r.I : "") + " (U " + r.U.toFixed(2) + ", V " + r.V.toFixed(2) + ")");
    await refreshTask();
  } catch (e) { say(e.message, true); } finally { state.busy = false; }
}

// a dot where the last click landed, so the annotator sees what was recorded
function markClick(view, px, py) {
  for (const m of document.querySelectorAll(".click-mark")) m.remove();
  const img = $("view-" + view);
  if (!img) return;
  const m = document.createElement("span");
  m.className = "click-mark";
  m.style.left = (img.offsetLeft + px * img.clientWidth / img.naturalWidth) + "px";
  m.style.top = (img.offsetTop + py * img.clientHeight / img.naturalHeight) + "px";
  img.parentElement.append(m);
}

async function skipPoint() {
  const p = currentPoint();
  if (!p || state.busy) return;
  state.busy = true;
  try {
    await api("POST", "/api/points/" + p.id + "/skip");
    say("skipped");
    await refreshTask();
  } catch (e) { say(e.message, true); } finally { state.busy = false; }
}

async function undoPoint() {
  if (state.busy) return;
  state.busy = true;
  try {
    await api("POST", "/api/persons/" + state.task.person_id + "/undo");
    say("undone");
    await refreshTask();
  } catch (e) { say(e.message, true); } finally { state.busy = false; }
}

async function refreshTask() {
  await showTask(await api("GET", "/api/persons/" + state.task.person_id));
}

async function repaint() {
  try {
    const t = await api("POST", "/api/persons/" + state.task.person_id + "/reopen");
    await showTask(t);
  } catch (e) { say(e.message, true); }
}

// ------------------------------------------------------------------ admin
async function exportJson() {
  try {
    const data = await api("GET", "/api/admin/export");
    const a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([JSON.stringify(data)], { type: "application/json" }));
    a.download = "densepose_annotations.json";
    a.click();
    say("exported " + data.annotations.length + " persons");
  } catch (e) { say(e.message, true); }
}

async function uploadImages(files) {
  for (const f of files) {
    const r = await fetch("/api/admin/images?name=" + encodeURIComponent(f.name), {
      method: "POST", headers: { Authorization: "Bearer " + state.token, "Content-Type": f.type }, body: f,
    });
    const data = await r.json().catch(() => ({}));
    say(r.ok ? "uploaded " + f.name : f.name + ": " + data.error, !r.ok);
  }
}

// ------------------------------------------------------------------ keyboard
function onKey(ev) {
  if (ev.target.tagName === "INPUT") return;
  const t = state.task;
  if (ev.key === "?") { $("help").hidden = !$("help").hidden; return; }
  if (!t) return;
  const ctrlZ = (ev.ctrlKey || ev.metaKey) && ev.key.toLowerCase() === "z";
  if (t.kind === "boxes") {
    if (ev.key === "Backspace") { state.boxes.pop(); drawBoxes(); ev.preventDefault(); }
    else if (ev.key === "Enter") saveBoxes();
    return;
  }
  if (t.kind !== "person") return;
  if (t.stage === "parts") {
    if (ctrlZ) { undoParts(); ev.preventDefault(); return; }
    const digit = ev.code.startsWith("Digit") ? Number(ev.code.slice(5)) : NaN;
    if (!isNaN(digit) && ev.shiftKey && digit >= 1 && digit <= 4) selectPart(10 + digit);
    else if (!isNaN(digit) && !ev.shiftKey) selectPart(digit === 0 ? 10 : digit);
    else if (ev.key === ",") selectPart(state.part - 1);
    else if (ev.key === ".") selectPart(state.part + 1);
    else if (ev.key === "b") selectTool("brush");
    else if (ev.key === "p") selectTool("poly");
    else if (ev.key === "e") selectTool("erase");
    else if (ev.key === "[") { state.brush = Math.max(1, state.brush - 1); $("brush-size").value = state.brush; }
    else if (ev.key === "]") { state.brush = Math.min(40, state.brush + 1); $("brush-size").value = state.brush; }
    else if (ev.key === "h") { state.showLabels = !state.showLabels; drawParts(); }
    else if (ev.key === "Escape") { state.poly = []; drawParts(); }
    else if (ev.key === "Enter") { if (state.tool === "poly" && state.poly.length) closePolygon(); else saveParts(); }
  } else if (t.stage === "points") {
    if (ev.key === "s") skipPoint();
    else if (ev.key === "u" || ctrlZ) { undoPoint(); ev.preventDefault(); }
  } else if (t.stage === "done" && (ev.key === "n" || ev.key === "Enter")) nextTask();
}

// ------------------------------------------------------------------ wiring
window.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", (ev) => { ev.preventDefault(); login($("token").value.trim()); });
  $("btn-logout").onclick = () => logout();
  $("btn-help").onclick = () => { $("help").hidden = !$("help").hidden; };
  $("btn-help-close").onclick = () => { $("help").hidden = true; };
  $("btn-export").onclick = exportJson;
  $("upload").onchange = (ev) => uploadImages(ev.target.files);
  $("btn-skip").onclick = skipPoint;
  $("btn-undo").onclick = undoPoint;
  $("btn-repaint").onclick = repaint;
  $("btn-next").onclick = nextTask;
  setupBoxes();
  setupParts();
  document.addEventListener("keydown", onKey);
  if (state.token) login(state.token);
});
