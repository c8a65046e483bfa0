// Keyboard shortcuts for the moderation console (no inline script: CSP script-src 'self').
(function () {
  "use strict";
  var rows = [];
  var current = -1;

  function typing(el) {
    if (!el) { return false; }
    var tag = el.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable;
  }

  function select(i) {
    if (!rows.length) { return; }
    if (current >= 0) { rows[current].classList.remove("current"); }
    current = Math.max(0, Math.min(rows.length - 1, i));
    rows[current].classList.add("current");
    var link = rows[current].querySelector("[data-rowlink]");
    if (link) { link.focus(); }
  }

  function follow(selector) {
    var link = document.querySelector(selector);
    if (link) { window.location.assign(link.href); }
  }

  function toggleHelp() {
    var help = document.getElementById("raccourcis");
    if (!help) { return; }
    help.hidden = !help.hidden;
    if (!help.hidden) { help.focus(); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    rows = Array.prototype.slice.call(document.querySelectorAll("tr[data-row]"));
  });

  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
    var help = document.getElementById("raccourcis");
    if (ev.key === "Escape") {
      if (help && !help.hidden) { help.hidden = true; }
      if (typing(document.activeElement)) { document.activeElement.blur(); }
      return;
    }
    if (ev.key === "Enter" && ev.target.id === "reject-reason" && ev.target.value) {
      ev.preventDefault();
      document.getElementById("reject-form").requestSubmit();
      return;
    }
    if (typing(ev.target)) { return; }
    var approve = document.getElementById("approve-form");
    switch (ev.key) {
      case "j":
        if (rows.length) { select(current + 1); } else { follow("a[data-nav=next]"); }
        break;
      case "k":
        if (rows.length) { select(current - 1); } else { follow("a[data-nav=prev]"); }
        break;
      case "x":
        if (current >= 0) {
          var box = rows[current].querySelector("input[type=checkbox]");
          if (box) {
            box.checked = !box.checked;
            // as a click would: the DSFR marks the row selected (aria-selected)
            box.dispatchEvent(new Event("change", { bubbles: true }));
          }
        } else { return; }
        break;
      case "a":
        if (approve) { approve.requestSubmit(); } else { return; }
        break;
      case "r":
        var reason = document.getElementById("reject-reason");
        if (reason) { reason.focus(); } else { return; }
        break;
      case "e":
        var need = document.getElementById("edit-need");
        if (need) { need.focus(); } else { return; }
        break;
      case "?":
        toggleHelp();
        break;
      default:
        return;
    }
    ev.preventDefault();
  });
})();
