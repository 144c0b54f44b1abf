// mallcore console: the little the pages need beyond HTML. Every page reads and
// every form posts without it; with it, a destructive step asks first.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });
  // A select in a filter form applies itself.
  document.addEventListener("change", function (event) {
    var field = event.target;
    if (field.tagName === "SELECT" && field.form && field.form.classList.contains("filters")) {
      field.form.submit();
    }
  });
})();
