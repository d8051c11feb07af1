// perfscope pages: copy buttons and an opt-in auto-refresh. Nothing else.
(function () {
  "use strict";
  document.querySelectorAll("button.copy").forEach(function (button) {
    button.addEventListener("click", function () {
      var text = button.getAttribute("data-copy") || "";
      var done = function () {
        button.textContent = "Copied";
        setTimeout(function () { button.textContent = "Copy"; }, 1500);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done);
      } else {
        var area = document.createElement("textarea");
        area.value = text;
        document.body.appendChild(area);
        area.select();
        document.execCommand("copy");
        document.body.removeChild(area);
        done();
      }
    });
  });
  var toggle = document.getElementById("auto-refresh");
  if (toggle) {
    var key = "perfscope.autoRefresh";
    toggle.checked = localStorage.getItem(key) === "on";
    var timer = null;
    var arm = function () {
      if (timer) { clearTimeout(timer); timer = null; }
      if (toggle.checked) { timer = setTimeout(function () { location.reload(); }, 10000); }
    };
    toggle.addEventListener("change", function () {
      localStorage.setItem(key, toggle.checked ? "on" : "off");
      arm();
    });
    arm();
  }
})();
