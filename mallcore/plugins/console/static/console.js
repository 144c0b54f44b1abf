// mallcore console: the little the pages need beyond HTML. Every page reads and
// every form posts without it; with it, a destructive step asks first, and forms
// marked with hx-post (htmx, vendored beside this file) update their part of the
// page in place instead of loading a new one.
(function () {
  "use strict";
  // Asked before anything else sees the submit (capture), so htmx does not post either.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      event.stopPropagation();
    }
  }, true);
  // A select in a filter form applies itself.
  document.addEventListener("change", function (event) {
    var field = event.target;
    if (field.tagName === "SELECT" && field.form && field.form.classList.contains("filters")) {
      field.form.submit();
    }
  });
  // A refused step (403 maker-checker, 409, 422...) answers with the page that explains it:
  // show its main part in place of this one, as a plain form post would.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var detail = event.detail;
    if (detail.xhr && detail.xhr.status >= 400) {
      var main = document.querySelector("main");
      if (main) {
        detail.shouldSwap = true;
        detail.isError = false;
        detail.target = main;
        detail.selectOverride = "main";
        detail.swapOverride = "outerHTML";
      }
    }
  });
})();
