// kgate local's live page: polls /ui/data every second and refills the
// tables from it. Text goes in with textContent only; links only for http(s).
"use strict";
(function () {
  const every = 1000;

  function set(row, sel, text) {
    const el = row.querySelector(sel);
    if (el) el.textContent = text;
  }

  function chart(row, sel, c) {
    const svg = row.querySelector(sel);
    if (!svg) return;
    svg.dataset.max = String(c.max);
    svg.dataset.last = String(c.last);
    svg.querySelectorAll("polyline").forEach(function (pl, i) {
      pl.setAttribute("points", c.lines[i] || "");
    });
    const label = svg.parentNode.querySelector(".label");
    if (label) label.textContent = c.label;
  }

  function svcRow(tpl, s) {
    const row = tpl.content.firstElementChild.cloneNode(true);
    row.dataset.key = s.key;
    set(row, ".ns", s.namespace);
    set(row, ".name", s.name);
    const cell = row.querySelector(".url");
    cell.textContent = "";
    if (/^https?:\/\//.test(s.url)) {
      const a = document.createElement("a");
      a.href = s.url;
      a.textContent = s.url;
      cell.appendChild(a);
    } else {
      cell.textContent = s.url;
    }
    set(row, ".ready", s.ready);
    row.querySelector(".ready").dataset.ready = s.ready;
    set(row, ".reason", s.reason);
    set(row, ".latest", s.latestReady);
    return row;
  }

  function revRow(tpl, r) {
    const row = tpl.content.firstElementChild.cloneNode(true);
    row.dataset.key = r.key;
    set(row, ".ns", r.namespace);
    set(row, ".name", r.name);
    set(row, ".service", r.service);
    set(row, ".ready", r.ready);
    row.querySelector(".ready").dataset.ready = r.ready;
    set(row, ".mode", r.mode);
    row.querySelector(".mode").dataset.mode = r.mode;
    set(row, ".actual", r.actual);
    set(row, ".desired", r.desired);
    chart(row, "svg.pods", r.pods);
    chart(row, "svg.rps", r.rate);
    return row;
  }

  function fill(tbodyId, tplId, items, make) {
    const tbody = document.getElementById(tbodyId);
    const tpl = document.getElementById(tplId);
    const rows = items.map(function (it) { return make(tpl, it); });
    tbody.replaceChildren.apply(tbody, rows);
  }

  function hidden(id, n) {
    const p = document.getElementById(id);
    p.hidden = !n;
    set(p, ".n", String(n));
  }

  function render(v) {
    fill("services", "svc-row", v.services, svcRow);
    fill("revisions", "rev-row", v.revisions, revRow);
    hidden("hidden-services", v.hidden.services);
    hidden("hidden-revisions", v.hidden.revisions);
    set(document, "#now", v.now);
    set(document, "#window", String(v.windowSeconds));
    const st = document.getElementById("status");
    st.dataset.state = "live";
    set(st, "#state", "updated");
    st.dataset.updates = String(Number(st.dataset.updates || 0) + 1);
  }

  function poll() {
    fetch("/ui/data", { cache: "no-store" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(render)
      .catch(function (e) {
        const st = document.getElementById("status");
        st.dataset.state = "error";
        set(st, "#state", "kgate is not answering (" + e.message + "); retrying; last update");
      })
      .finally(function () { setTimeout(poll, every); });
  }

  poll();
})();
