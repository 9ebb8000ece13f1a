// Reloads a list whose rows change on their own (sync runs, deliveries, the outbox) every
// data-seconds, except while the admin is busy with it: rows ticked, a menu or dialog open, typing,
// or the tab hidden (then it waits for the next turn). An external file: the admin's policy runs
// no inline script but sqladmin's own.
(function () {
  "use strict";
  var script = document.currentScript;
  var seconds = Number(script && script.getAttribute("data-seconds")) || 0;
  if (seconds < 1) {
    return;
  }

  function busy() {
    if (document.hidden) {
      return true;
    }
    if (document.querySelector(".select-box:checked, #select-all:checked, .modal.show, .dropdown-menu.show")) {
      return true;
    }
    var active = document.activeElement;
    if (active && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName)) {
      return true;
    }
    var search = document.getElementById("search-input");
    var searched = new URLSearchParams(window.location.search).get("search") || "";
    return Boolean(search && search.value !== searched);
  }

  window.setInterval(function () {
    if (!busy()) {
      window.location.reload();
    }
  }, seconds * 1000);
})();
