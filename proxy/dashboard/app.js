// latch dashboard: polls the admin API every second and redraws. No
// external assets. With --admin-token-file, open it as
// /dashboard/#token=TOKEN; the token stays in this tab's sessionStorage.
"use strict";

(function () {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem("latch-token", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname);
  }
})();

function headers() {
  const t = sessionStorage.getItem("latch-token");
  return t ? { Authorization: "Bearer " + t } : {};
}

async function get(path) {
  const r = await fetch(path, { headers: headers(), cache: "no-store" });
  if (r.status === 401) throw new Error("unauthorized: open /dashboard/#token=TOKEN");
  if (!r.ok) throw new Error(path + ": " + r.status);
  return r.json();
}

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}

function stat(name, value, testid) {
  return [el("dt", {}, name), el("dd", { "data-testid": testid }, value)];
}

function drawServices(services) {
  const root = document.getElementById("services");
  root.replaceChildren(...services.map((s) => {
    const e = s.endpoints;
    return el("div", { class: "service", "data-service": s.name },
      el("h3", {}, s.name, " ",
        el("small", {}, `${e.ready} ready, ${e.draining} draining, ${e.down} down · routes: ${s.routes.join(", ") || "none"}`)),
      el("div", { class: "backends" }, ...s.backends.map((b) =>
        el("div", { class: "backend " + b.state, "data-testid": "backend", "data-addr": b.addr, "data-state": b.state },
          el("div", { class: "addr" }, b.addr),
          el("div", { class: "muted" }, b.id === b.addr ? b.state : `${b.state} · ${b.id}`),
          el("dl", {},
            ...stat("requests", b.requests, "requests"),
            ...stat("in flight", b.in_flight, "in-flight"),
            ...stat("tunnels", b.tunnels, "tunnels"),
            ...stat("sticky sessions", b.sticky_sessions, "sticky-sessions"),
            ...stat("sticky hits", b.sticky_hits, "sticky-hits"))))));
  }));
}

function drawRoutes(routes) {
  const body = document.querySelector("#routes tbody");
  body.replaceChildren(...routes.map((r) => el("tr", { "data-route": r.name },
    el("td", {}, r.name), el("td", {}, el("code", {}, r.rule)), el("td", {}, r.priority),
    el("td", {}, r.service), el("td", {}, r.strategy), el("td", {}, r.cookie || "–"))));
}

function drawDecisions(ds) {
  const body = document.querySelector("#decisions tbody");
  body.replaceChildren(...ds.slice(0, 25).map((d) => el("tr", { "data-testid": "decision" },
    el("td", {}, new Date(d.time).toLocaleTimeString()), el("td", {}, d.route),
    el("td", {}, d.backend || "–"), el("td", { class: "reason-" + d.reason }, d.reason),
    el("td", {}, d.status), el("td", {}, d.set_cookie ? "yes" : ""))));
}

async function tick() {
  const status = document.getElementById("status");
  try {
    const [services, routes, decisions] = await Promise.all([
      get("/api/services"), get("/api/routes"), get("/api/decisions")]);
    drawServices(services);
    drawRoutes(routes);
    drawDecisions(decisions);
    status.textContent = "live · " + new Date().toLocaleTimeString();
    status.className = "pill ok";
  } catch (err) {
    status.textContent = String(err.message || err);
    status.className = "pill err";
  }
}

async function start() {
  try {
    const v = await get("/api/version");
    document.getElementById("version").textContent = `${v.version} (${v.revision.slice(0, 12)}, ${v.go_version})`;
  } catch (err) { /* tick reports it */ }
  await tick();
  setInterval(tick, 1000);
}

document.getElementById("explain").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const q = new URLSearchParams();
  for (const [k, v] of new FormData(ev.target)) if (v) q.set(k, v);
  const out = document.getElementById("explain-out");
  out.hidden = false;
  try {
    const e = await get("/api/explain?" + q.toString());
    const head = e.matched
      ? `route ${e.route.name}: ${e.why}\n${e.decision.reason}: ${e.decision.action}\n\n`
      : `${e.why}\n${e.decision.action}\n\n`;
    out.textContent = head + JSON.stringify(e, null, 2);
  } catch (err) {
    out.textContent = String(err.message || err);
  }
});

start();
