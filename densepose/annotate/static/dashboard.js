// The campaign owner's page: progress, throughput, skipped points, review queue, assignment.
"use strict";

function cell(tr, content) {
  const td = document.createElement("td");
  if (content instanceof Node) td.append(content); else td.textContent = content === null || content === undefined ? "" : content;
  tr.append(td);
  return td;
}

function head(table, names) {
  table.innerHTML = "";
  const tr = document.createElement("tr");
  for (const n of names) { const th = document.createElement("th"); th.textContent = n; tr.append(th); }
  table.append(tr);
}

function button(label, onclick, cls) {
  const b = document.createElement("button");
  b.textContent = label;
  b.onclick = onclick;
  if (cls) b.className = cls;
  return b;
}

function progressBar(done, total) {
  const span = document.createElement("span");
  const bar = document.createElement("span");
  bar.className = "bar";
  bar.style.width = (total ? Math.round(60 * done / total) : 0) + "px";
  span.append(bar, document.createTextNode(" " + done + " / " + total));
  return span;
}

async function adminAction(path, body, done) {
  try {
    await api("POST", path, body);
    say(done);
    await showDashboard();
  } catch (e) { say(e.message, true); }
}

async function showDashboard() {
  const d = await api("GET", "/api/admin/dashboard");
  $("task").hidden = true;
  $("dashboard").hidden = false;
  $("task-title").textContent = "Dashboard";
  $("task-progress").textContent = "";
  const t = d.totals;
  $("dash-totals").innerHTML = "";
  for (const [label, value] of [["images", t.images], ["images to box", t.images_without_boxes],
    ["persons in step 1", t.persons.parts], ["in step 2", t.persons.points], ["done", t.persons.done],
    ["accepted", t.accepted], ["points placed", t.points_placed], ["points skipped", t.points_skipped]]) {
    const div = document.createElement("div");
    const b = document.createElement("b");
    b.textContent = value;
    div.append(b, document.createTextNode(label));
    $("dash-totals").append(div);
  }
  const ann = $("dash-annotators");
  head(ann, ["annotator", "persons open", "done", "points", "skipped", "active min", "answers / h", "error (cm)"]);
  for (const a of d.annotators) {
    const tr = document.createElement("tr");
    for (const v of [a.name, a.persons_open, a.persons_done, a.points, a.skipped, (60 * a.active_hours).toFixed(1),
      a.points_per_hour === null ? "-" : Math.round(a.points_per_hour),
      a.mean_error_cm === null ? "-" : a.mean_error_cm.toFixed(1)]) cell(tr, v);
    ann.append(tr);
  }
  const ag = d.agreement;
  $("dash-agreement").textContent = ag.pairs ? ag.pairs + " points answered twice: geodesic distance mean " +
    ag.mean_cm.toFixed(1) + " cm, median " + ag.median_cm.toFixed(1) + " cm (" +
    Object.entries(ag.by_pair).map(([k, v]) => k + ": " + v.mean_cm.toFixed(1) + " cm over " + v.pairs).join("; ") + ")"
    : "No person has a second annotator yet: use \u201csecond annotator\u201d in the review queue.";
  const rev = $("dash-review");
  head(rev, ["person", "image", "annotator", "placed", "skipped", "state", ""]);
  for (const r of d.review) {
    const tr = document.createElement("tr");
    tr.dataset.person = r.person_id;
    cell(tr, r.person_id + (r.replica_of ? " (copy of " + r.replica_of + ")" : ""));
    cell(tr, r.image_id); cell(tr, r.owner); cell(tr, r.placed); cell(tr, r.skipped);
    cell(tr, r.review === "rejected" ? "rejected: " + r.review_note : r.stage);
    const acts = cell(tr, "");
    const base = "/api/admin/persons/" + r.person_id;
    if (r.stage === "done") acts.append(button("Accept", () => adminAction(base + "/accept", undefined, "accepted " + r.person_id), "primary"));
    acts.append(button("Reject\u2026", () => {
      const note = prompt("Why? The annotator sees this note.");
      if (note !== null) adminAction(base + "/reopen", { note, reject: true }, "returned " + r.person_id);
    }));
    acts.append(button("Reopen", () => adminAction(base + "/reopen", {}, "reopened " + r.person_id)));
    if (!r.replica_of) acts.append(button("Second annotator", () => adminAction(base + "/replicate", undefined, "copied " + r.person_id)));
    rev.append(tr);
  }
  const imgs = $("dash-images");
  head(imgs, ["image", "file", "persons done", "points answered", "boxed by", "assigned to", ""]);
  for (const i of d.images) {
    const tr = document.createElement("tr");
    tr.dataset.image = i.id;
    cell(tr, i.id); cell(tr, i.file_name);
    cell(tr, i.boxes_done ? progressBar(i.done, i.persons) : "needs boxes");
    cell(tr, progressBar(i.answered, i.points));
    cell(tr, i.boxer);
    const sel = document.createElement("select");
    for (const name of [""].concat(d.users)) {
      const o = document.createElement("option");
      o.value = name; o.textContent = name || "anyone";
      o.selected = (i.assignee || "") === name;
      sel.append(o);
    }
    sel.onchange = () => adminAction("/api/admin/assign", { images: [i.id], annotator: sel.value || null },
      "image " + i.id + " assigned to " + (sel.value || "anyone"));
    cell(tr, sel);
    cell(tr, i.boxes_done ? button("Reopen boxes", () => adminAction("/api/admin/images/" + i.id + "/reopen", undefined, "image " + i.id + " back to step 0")) : "");
    imgs.append(tr);
  }
}
