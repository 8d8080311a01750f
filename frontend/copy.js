// Copy buttons: <button data-copy-text="..."> copies its text and says so.

async function writeClipboard(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // Plain-http hosts have no Clipboard API: fall back to a hidden selection.
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.className = "sr-only";
  document.body.appendChild(area);
  area.select();
  const copied = document.execCommand("copy");
  area.remove();
  if (!copied) throw new Error("copy refused");
}

function announce(button, label) {
  const original = button.dataset.label || button.textContent;
  button.dataset.label = original;
  button.textContent = label;
  button.classList.toggle("copied", label === "Copied");
  clearTimeout(Number(button.dataset.timer || 0));
  button.dataset.timer = String(setTimeout(() => {
    button.textContent = original;
    button.classList.remove("copied");
  }, 2000));
}

export function installCopyButtons(root = document) {
  root.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-copy-text]");
    if (!button) return;
    event.preventDefault();
    try {
      await writeClipboard(button.dataset.copyText);
      announce(button, "Copied");
    } catch {
      announce(button, "Press Ctrl+C");
      const field = button.parentElement.querySelector("input[readonly]");
      if (field) field.select();
    }
  });
}
