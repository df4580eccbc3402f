// The dashboard's own script: the only behaviour htmx does not give. Loaded from this origin
// (the Content-Security-Policy allows no inline script).
"use strict";

// "Pick all" checkbox of a failures table: ticks or clears every job in its form.
document.addEventListener("change", function (event) {
  var box = event.target;
  if (!(box instanceof HTMLInputElement) || !box.classList.contains("pick-all")) return;
  var form = box.closest("form");
  if (!form) return;
  form.querySelectorAll('input[type="checkbox"][name="job"]').forEach(function (job) {
    job.checked = box.checked;
  });
});
