// Work in progress (a cache being cleared) refreshes its page every few
// seconds until it is done; without scripts the page says to reload it.

export function installRefresh(root = document) {
  const marker = root.querySelector("[data-refresh-seconds]");
  if (!marker) return;
  const delay = (Number(marker.dataset.refreshSeconds) || 2) * 1000;
  const again = () => {
    // Never pull a page away from under an open dialog.
    if (root.querySelector("dialog[open]")) setTimeout(again, delay);
    else window.location.reload();
  };
  setTimeout(again, delay);
}
