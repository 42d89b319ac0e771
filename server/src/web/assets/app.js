// itsmflow's pages work without this file; it adds live queue updates and keyboard shortcuts.
// Live updates: the queue page listens to its queue's server-sent events (the session cookie
// authenticates the stream) and, on any change, fetches the table body again from the server,
// which renders it exactly as on a reload.
"use strict";

(function () {
  function typing(e) {
    var t = e.target;
    return t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
  }

  // Queue page: live rows.
  var table = document.querySelector("[data-live-rows]");
  if (table && window.EventSource) {
    var rowsUrl = table.getAttribute("data-live-rows");
    var eventsUrl = table.getAttribute("data-live-events");
    var status = document.getElementById("live-status");
    var pending = null;
    var refresh = function () {
      if (pending) return;
      pending = setTimeout(function () {
        pending = null;
        fetch(rowsUrl, { credentials: "same-origin", headers: { "Accept": "text/html" } })
          .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
          .then(function (html) {
            var body = table.querySelector("tbody");
            var focused = document.activeElement && document.activeElement.closest("tr[data-task]");
            var keep = focused ? focused.getAttribute("data-task") : null;
            body.outerHTML = html;
            if (keep) {
              var again = table.querySelector('tr[data-task="' + keep + '"] a');
              if (again) again.focus();
            }
            var count = table.querySelectorAll("tbody tr[data-task]").length;
            if (status) status.textContent = "Queue updated: " + count + " task" + (count === 1 ? "" : "s") + ".";
          })
          .catch(function () {});
      }, 100);
    };
    var source = new EventSource(eventsUrl);
    var first = true;
    source.addEventListener("ready", function () {
      // After a reconnection, what happened meanwhile is unknown: read the queue again.
      if (!first) refresh();
      first = false;
      table.setAttribute("data-live", "connected");
    });
    ["added", "claimed", "released", "removed", "escalated", "lagged"].forEach(function (kind) {
      source.addEventListener(kind, refresh);
    });
    // Remaining times move on even when nothing happens.
    setInterval(refresh, 60000);
  }

  // Keyboard: `n` claims the next task, `j`/`k` move between rows, `?` shows the keys.
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e)) return;
    if (e.key === "n") {
      var claim = document.getElementById("claim-next");
      if (claim) { e.preventDefault(); claim.click(); }
    } else if (e.key === "j" || e.key === "k") {
      var links = Array.prototype.slice.call(document.querySelectorAll("tbody tr[data-task] a.ticket"));
      if (!links.length) return;
      var at = links.indexOf(document.activeElement);
      var next = e.key === "j" ? Math.min(at + 1, links.length - 1) : Math.max(at - 1, 0);
      if (at < 0) next = 0;
      e.preventDefault();
      links[next].focus();
    } else if (e.key === "?") {
      var help = document.getElementById("keys");
      if (help) { help.open = !help.open; }
    }
  });
})();

// The process editor: the checker's problems while typing (a moment after the last key, the
// project is posted to the server, which answers the same lists the page shows after Check),
// and "line N" links that put the cursor on that line of the file.
(function () {
  "use strict";
  var form = document.querySelector("form[data-check-url]");
  if (!form || !window.fetch || !window.URLSearchParams) return;
  var url = form.getAttribute("data-check-url");
  var timer = null;
  var seq = 0;
  function check() {
    var mine = ++seq;
    fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Accept": "text/html" },
      body: new URLSearchParams(new FormData(form))
    })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        if (mine !== seq) return; // an older answer than one already shown
        var box = document.createElement("div");
        box.innerHTML = html;
        // A copy: replacing moves each node out of `box`, which shrinks its live children.
        Array.prototype.slice.call(box.children).forEach(function (fresh) {
          var old = fresh.id && document.getElementById(fresh.id);
          if (old) old.replaceWith(fresh);
        });
        form.setAttribute("data-checked", String(mine));
      })
      .catch(function () {});
  }
  form.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(check, 600);
  });
  document.addEventListener("click", function (e) {
    var link = e.target.closest && e.target.closest("a.goto[data-line]");
    if (!link) return;
    var area = document.getElementById(link.getAttribute("data-target"));
    if (!area) return;
    e.preventDefault();
    var line = parseInt(link.getAttribute("data-line"), 10) || 1;
    var column = parseInt(link.getAttribute("data-column"), 10) || 1;
    // A failed test's file may be folded: unfold it to put the cursor there.
    var folded = area.closest("details");
    if (folded) folded.open = true;
    var lines = area.value.split("\n");
    var at = 0;
    for (var i = 0; i < line - 1 && i < lines.length; i++) at += lines[i].length + 1;
    var end = at + (lines[line - 1] || "").length;
    area.focus();
    area.setSelectionRange(Math.min(at + column - 1, end), end);
    var height = parseFloat(getComputedStyle(area).lineHeight) || 18;
    area.scrollTop = Math.max(0, (line - 1 - Math.floor((area.rows || 20) / 2)) * height);
  });
})();
