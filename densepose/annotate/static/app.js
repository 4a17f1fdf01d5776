// DensePose annotator front end: plain JS, no libraries, works offline.
// State lives on the server; the scripts only draw, collect input and call the JSON API.
// This file: API calls, login, task dispatch, step 0 (boxes), keyboard and wiring.
// parts.js is step 1, points.js step 2, dashboard.js the campaign owner's page.
"use strict";

const S = 256; // dp_masks resolution: part labels are a 256x256 map inside the person box
const $ = (id) => document.getElementById(id);
const state = {
  token: sessionStorage.getItem("dp-token") || "",
  me: null, parts: null, task: null, image: null,
  labels: null, history: [], part: 1, tool: "brush", brush: 8, showLabels: true, protect: false,
  poly: [], polys: [], viewPanels: {}, boxes: [], drag: null, painting: false, busy: false, dirty: false, cursor: null,
};

// ------------------------------------------------------------------ API
async function api(method, path, body) {
  const opts = { method, headers: { Authorization: "Bearer " + state.token } };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  if (r.status === 401) { state.token = ""; logout("Your token was not accepted."); throw new Error("unauthorised"); }
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
  $("btn-logout").hidden = false;
  $("who").textContent = state.me.name + (state.me.is_admin ? " (admin)" : "");
  for (const el of document.querySelectorAll(".admin")) el.hidden = !state.me.is_admin;
  state.parts = await api("GET", "/api/parts");
  buildPartList();
  await nextTask();
}

async function logout(msg) {
  if (state.dirty && state.token) await saveDraft().catch(() => {});
  sessionStorage.removeItem("dp-token");
  state.token = "";
  $("task").hidden = true;
  $("dashboard").hidden = true;
  $("login").hidden = false;
  $("btn-logout").hidden = true;
  $("who").textContent = "";
  $("login-error").textContent = msg || "";
}

// ------------------------------------------------------------------ tasks
function showStep(name) {
  $("task").hidden = false;
  $("dashboard").hidden = true;
  for (const el of document.querySelectorAll(".step")) el.hidden = el.id !== "step-" + name;
}

async function nextTask() {
  say("");
  const t = await api("POST", "/api/tasks/next");
  await showTask(t);
}

async function showTask(t) {
  state.task = t;
  $("review-note").textContent = t.review === "rejected" ? "Returned by the reviewer: " + (t.review_note || "(no note)") : "";
  $("save-state").textContent = "";
  if (t.kind === "admin") { await showDashboard(); return; }
  if (t.kind === "none") { $("task-title").textContent = ""; $("task-progress").textContent = ""; showStep("none"); return; }
  if (!state.image || state.image.id !== t.image_id) {
    state.image = { id: t.image_id, img: await fetchImage("/api/images/" + t.image_id) };
  }
  if (t.kind === "boxes") {
    $("task-title").textContent = "Image " + t.image_id;
    $("task-progress").textContent = "";
    state.boxes = (t.boxes || []).slice();
    showStep("boxes");
    const img = state.image.img;
    state.vpBoxes.fit([0, 0, img.naturalWidth, img.naturalHeight]);
    return;
  }
  $("task-title").textContent = "Person " + t.person_id + " (image " + t.image_id + ")";
  if (t.stage === "parts") await showParts(t);
  else if (t.stage === "points") await showPoints(t);
  else {
    const n = t.points.filter((p) => p.status === "done").length;
    $("done-text").textContent = "Person " + t.person_id + " is done: " + n + " of " + t.points.length + " points placed.";
    $("task-progress").textContent = "";
    $("btn-done-undo").hidden = !t.points.some((p) => p.status !== "todo");
    showStep("done");
  }
}

async function refreshTask() {
  await showTask(await api("GET", "/api/persons/" + state.task.person_id));
}

// the person box with a margin, in image pixels: what the viewports frame
function personRect(margin) {
  const [bx, by, bw, bh] = state.task.bbox;
  return [bx - bw * margin, by - bh * margin, bw * (1 + 2 * margin), bh * (1 + 2 * margin)];
}

// ------------------------------------------------------------------ step 0: boxes
function drawBoxes() {
  const vp = state.vpBoxes, ctx = vp.begin();
  ctx.drawImage(state.image.img, 0, 0);
  ctx.lineWidth = 2 / vp.scale;
  ctx.strokeStyle = "#aaa";
  for (const b of state.task.fixed || []) ctx.strokeRect(b[0], b[1], b[2], b[3]);
  ctx.strokeStyle = "#0f0";
  const all = state.drag ? state.boxes.concat([state.drag]) : state.boxes;
  for (const b of all) ctx.strokeRect(b[0], b[1], b[2], b[3]);
}

function setupBoxes() {
  const c = $("box-canvas");
  state.vpBoxes = new Viewport(c, () => { if (state.task && state.task.kind === "boxes") drawBoxes(); });
  c.addEventListener("pointerdown", (ev) => {
    if (ev.button !== 0) return;
    const [x, y] = state.vpBoxes.toImage(ev);
    state.dragStart = [x, y];
    state.drag = [x, y, 0, 0];
    c.setPointerCapture(ev.pointerId);
  });
  c.addEventListener("pointermove", (ev) => {
    if (!state.drag) return;
    const [x, y] = state.vpBoxes.toImage(ev);
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
  const none = state.boxes.length === 0;
  if (none && !(state.task.fixed || []).length &&
      !confirm("No box drawn. Close this image as showing no people? (The owner can reopen it.)")) return;
  try {
    await api("POST", "/api/images/" + state.task.image_id + "/boxes", { boxes: state.boxes, no_people: none });
    await nextTask();
  } catch (e) { say(e.message, true); }
}

async function editBoxes() {
  if (!confirm("Go back to step 0? Boxes of persons nobody has painted yet become editable again.")) return;
  try {
    await saveDraft(); // this person's paint so far is kept (a painted person keeps its box)
    await api("POST", "/api/images/" + state.task.image_id + "/reopen");
    await nextTask();
  } catch (e) { say(e.message, true); }
}

// ------------------------------------------------------------------ admin: files
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
  if (state.task && state.task.kind === "admin") await showDashboard();
}

// ------------------------------------------------------------------ keyboard
function onKey(ev) {
  if (ev.target.tagName === "INPUT" || ev.target.tagName === "SELECT") return;
  const t = state.task;
  if (ev.key === "?") { $("help").hidden = !$("help").hidden; return; }
  if (!t) return;
  const ctrlZ = (ev.ctrlKey || ev.metaKey) && ev.key.toLowerCase() === "z";
  if (t.kind === "boxes") {
    if (ev.key === "Backspace") { state.boxes.pop(); drawBoxes(); ev.preventDefault(); }
    else if (ev.key === "Enter") saveBoxes();
    else if (ev.key === "f") state.vpBoxes.refit();
    return;
  }
  if (t.kind !== "person") return;
  if (t.stage === "parts") partsKey(ev, ctrlZ);
  else if (t.stage === "points") {
    if (ev.key === "s") skipPoint();
    else if (ev.key === "u" || ctrlZ) { undoPoint(); ev.preventDefault(); }
    else if (ev.key === "f") state.vpPoint.refit();
  } else if (t.stage === "done") {
    if (ev.key === "n" || ev.key === "Enter") nextTask();
    else if (ev.key === "u" || ctrlZ) { undoPoint(); ev.preventDefault(); }
  }
}

// ------------------------------------------------------------------ wiring
window.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", (ev) => { ev.preventDefault(); login($("token").value.trim()); });
  $("btn-logout").onclick = () => logout();
  $("btn-help").onclick = () => { $("help").hidden = !$("help").hidden; };
  $("btn-help-close").onclick = () => { $("help").hidden = true; };
  $("btn-export").onclick = exportJson;
  $("btn-dashboard").onclick = showDashboard;
  $("upload").onchange = (ev) => uploadImages(ev.target.files);
  $("btn-next").onclick = nextTask;
  $("btn-boxes-edit").onclick = editBoxes;
  setupBoxes();
  setupParts();
  setupPoints();
  document.addEventListener("keydown", onKey);
  window.addEventListener("resize", () => {
    for (const vp of [state.vpBoxes, state.vpParts, state.vpPoint]) if (vp.canvas.clientWidth) vp.refit();
    if (state.task && state.task.stage === "points") layoutViews();
  });
  window.addEventListener("beforeunload", (ev) => {
    if (state.dirty) { ev.preventDefault(); ev.returnValue = ""; }
  });
  if (state.token) login(state.token);
});
