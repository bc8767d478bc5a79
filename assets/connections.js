// Progressive enhancement of the Connections page: "Copy" buttons for a newly issued token and
// the SCIM base URL. Without this script the buttons stay hidden and the values stay selectable.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var source = document.getElementById(button.getAttribute("data-copy"));
    var status = document.getElementById(button.getAttribute("data-copy") + "-status");
    if (!source) return;
    var say = function (text) {
      if (status) status.textContent = text;
    };
    button.hidden = false;
    button.addEventListener("click", function () {
      var text = source.value !== undefined ? source.value : source.textContent;
      var fallback = function () {
        source.focus();
        if (source.select) source.select();
        try {
          say(document.execCommand("copy") ? "Copied." : "Select the text and copy it.");
        } catch (e) {
          say("Select the text and copy it.");
        }
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(function () { say("Copied."); }, fallback);
      } else {
        fallback();
      }
    });
  });
});
