// Scope presets on the token page. Without scripts each preset is a link that
// brings the page back with its scopes checked; with them, the boxes change in
// place and what was typed in the form stays.

export function installScopePresets(root = document) {
  root.addEventListener("click", (event) => {
    const preset = event.target.closest("[data-preset-scopes]");
    const form = preset?.closest("form");
    if (!form) return;
    event.preventDefault();
    const wanted = new Set(preset.dataset.presetScopes.split(" "));
    for (const box of form.querySelectorAll("input[type=checkbox][name=scopes]")) {
      box.checked = wanted.has(box.value);
    }
    for (const other of form.querySelectorAll("[data-preset-scopes]")) {
      other.classList.toggle("selected", other === preset);
    }
  });
}
