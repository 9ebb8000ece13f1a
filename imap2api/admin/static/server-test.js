// The server form's "Test connection": posts the values in the form, not saved, to the admin's test
// endpoint and shows the folders or the error under the form, which stays as it is (the password
// too: nothing is sent back into the page). An external file: the admin's policy runs no inline
// script but sqladmin's own.
(function () {
  "use strict";
  var button = document.getElementById("test-connection");
  var result = document.getElementById("connection-test-result");
  if (!button || !result || !button.form) {
    return;
  }
  button.hidden = false;

  function show(kind, text) {
    result.className = "alert mt-3 alert-" + kind;
    result.textContent = text;
  }

  button.addEventListener("click", function () {
    button.disabled = true;
    show("info", "Testing the connection…");
    fetch(button.getAttribute("data-url"), {
      method: "POST",
      body: new FormData(button.form),
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        var type = response.headers.get("content-type") || "";
        if (type.indexOf("application/json") !== 0) {
          // The login page, after a redirect: the session ended.
          throw new Error("the admin session has ended: log in again (the form is not saved)");
        }
        return response.json();
      })
      .then(function (answer) {
        show(answer.ok ? "success" : "danger", answer.message);
      })
      .catch(function (error) {
        show("danger", "The test did not run: " + error.message);
      })
      .finally(function () {
        button.disabled = false;
      });
  });
})();
