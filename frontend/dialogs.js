// Confirmation dialogs. Without scripts the links and forms still work: a
// link falls back to its confirmation page, a form submits without asking.

export function installDialogs(root = document) {
  root.addEventListener("click", (event) => {
    const opener = event.target.closest("[data-dialog]");
    if (opener) {
      const dialog = document.getElementById(opener.dataset.dialog);
      if (dialog && typeof dialog.showModal === "function") {
        event.preventDefault();
        dialog.showModal();
      }
      return;
    }
    const closer = event.target.closest("[data-close-dialog]");
    if (closer) closer.closest("dialog")?.close();
  });

  root.addEventListener("submit", (event) => {
    const form = event.target;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });
}

export function installAutoSubmit(root = document) {
  // A role <select> saves as soon as it changes; its "Change" button is hidden.
  root.addEventListener("change", (event) => {
    const form = event.target.closest("form.js-autosubmit");
    if (form && event.target.tagName === "SELECT") form.requestSubmit();
  });
}
