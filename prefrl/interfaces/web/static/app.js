// The labelling page: one query at a time, two looping clips, answers by keys or buttons.
// The token comes once (a ?token= link or the form) and is kept in localStorage; every request sends it as a
// Bearer header, videos included (fetched as blobs and played from blob URLs).
"use strict";
const KEY = "prefrl-token";
const $ = (id) => document.getElementById(id);
const videos = [$("left").querySelector("video"), $("right").querySelector("video")];
let current = null;   // the query on screen
let busy = true;      // loading or sending: keys wait
let speed = 1;
let retryTimer = null;

const params = new URLSearchParams(location.search);
if (params.has("token")) {
  localStorage.setItem(KEY, params.get("token"));
  params.delete("token");
  history.replaceState(null, "", location.pathname + (params.toString() ? "?" + params : ""));
}

function show(which) {
  for (const id of ["compare", "waiting", "login"]) $(id).hidden = id !== which;
}

async function api(path, options = {}) {
  const token = localStorage.getItem(KEY);
  if (!token) { login(); throw new Error("no token"); }
  const headers = { Authorization: "Bearer " + token, ...(options.headers || {}) };
  const res = await fetch(path, { ...options, headers });
  if (res.status === 401) {
    localStorage.removeItem(KEY);
    login("that token is not valid for this run");
    throw new Error("unauthorised");
  }
  if (!res.ok && res.status !== 204) throw new Error(path + ": HTTP " + res.status);
  return res;
}

function login(error = "") {
  busy = true;
  $("login-error").textContent = error;
  show("login");
  $("token").focus();
}

$("login-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const token = $("token").value.trim();
  if (!token) return;
  localStorage.setItem(KEY, token);
  $("token").value = "";
  start();
});

async function refreshStatus() {
  const s = await (await api("/api/status")).json();
  $("env").textContent = s.env_id;
  $("who").textContent = s.labeler;
  $("counter").textContent = `you ${s.given} · labels ${s.labels} / ${s.asked} asked · ${s.open} open`;
  return s;
}

async function videoUrl(path) {
  const blob = await (await api(path)).blob();
  return URL.createObjectURL(blob);
}

async function present(q) {
  const urls = await Promise.all([videoUrl(q.left), videoUrl(q.right)]);
  for (const v of videos) { if (v.src.startsWith("blob:")) URL.revokeObjectURL(v.src); }
  const ready = videos.map((v, i) => new Promise((resolve) => {
    v.addEventListener("canplay", resolve, { once: true });
    v.src = urls[i];
  }));
  await Promise.all(ready);
  for (const v of videos) { v.playbackRate = speed; v.currentTime = 0; }
  await Promise.all(videos.map((v) => v.play().catch(() => {})));
  current = q;
  $("check").hidden = !q.check;
  document.querySelectorAll(".chosen").forEach((el) => el.classList.remove("chosen"));
  document.body.dataset.queryId = q.query_id;
  show("compare");
  busy = false;
}

async function next() {
  busy = true;
  clearTimeout(retryTimer);
  try {
    const res = await api("/api/next");
    if (res.status === 204) {
      const s = await refreshStatus();
      current = null;
      delete document.body.dataset.queryId;
      $("waiting-text").textContent = s.open > 0 ? "rendering clips…" : "waiting for the agent";
      $("waiting-sub").textContent = s.open > 0 ? `${s.open} queries open; the next pair is being drawn`
        : "no query is open right now; new ones appear as the agent trains";
      show("waiting");
      retryTimer = setTimeout(next, 1000 * Number(res.headers.get("Retry-After") || 2));
      return;
    }
    await present(await res.json());
    refreshStatus();
  } catch (err) {
    if (localStorage.getItem(KEY)) retryTimer = setTimeout(next, 3000);
    console.error(err);
  }
}

async function answer(a) {
  if (busy || !current) return;
  busy = true;
  const el = document.querySelector(`[data-answer="${a}"]`);
  if (el) el.classList.add("chosen");
  if (a === "left" || a === "right") $(a).classList.add("chosen");
  try {
    await api("/api/label", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ query_id: current.query_id, answer: a }) });
  } catch (err) { console.error(err); busy = false; return; }
  await next();
}

async function undo() {
  if (busy && current) return;
  busy = true;
  clearTimeout(retryTimer);
  const res = await api("/api/undo", { method: "POST" });
  const body = res.status === 200 ? await res.json() : null;
  if (body && body.next) { await present(body.next); refreshStatus(); } else { await next(); }
}

function setSpeed(s) {
  speed = Math.min(4, Math.max(0.25, s));
  for (const v of videos) v.playbackRate = speed;
}

document.addEventListener("keydown", (e) => {
  if (!$("login").hidden) return;
  const actions = {
    ArrowLeft: () => answer("left"), ArrowRight: () => answer("right"),
    ArrowUp: () => answer("equal"), "=": () => answer("equal"),
    ArrowDown: () => answer("skip"), " ": () => answer("skip"),
    Backspace: () => undo(),
    "+": () => setSpeed(speed * 2), "-": () => setSpeed(speed / 2),
    r: () => videos.forEach((v) => { v.currentTime = 0; }),
  };
  const act = actions[e.key];
  if (act) { e.preventDefault(); act(); }
});
document.querySelectorAll("[data-answer]").forEach((b) => b.addEventListener("click", () => answer(b.dataset.answer)));
document.querySelector("[data-action=undo]").addEventListener("click", () => undo());
$("left").addEventListener("click", () => answer("left"));
$("right").addEventListener("click", () => answer("right"));
// keep the two clips in step: when the left one wraps around, restart the right one with it
videos[0].addEventListener("seeked", () => { if (videos[0].currentTime < 0.05) videos[1].currentTime = 0; });

function start() {
  if (!localStorage.getItem(KEY)) { login(); return; }
  next();
}
start();
