// Progressive enhancement only: every page works without this script. An irreversible
// action's button stays disabled until the userName typed matches; the server checks again.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("input[data-confirm]").forEach(function (input) {
    var button = input.form && input.form.querySelector("button[type=submit]");
    if (!button) return;
    var sync = function () {
      button.disabled = input.value.trim() !== input.getAttribute("data-confirm");
    };
    input.addEventListener("input", sync);
    sync();
  });
});
