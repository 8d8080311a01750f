// Dockyard's progressive enhancements: every page works without them.
import { installCopyButtons } from "./copy.js";
import { installAutoSubmit, installDialogs } from "./dialogs.js";
import { installRefresh } from "./refresh.js";
import { installScopePresets } from "./presets.js";
import { installWarmProgress } from "./warm.js";

document.documentElement.classList.add("js");
installCopyButtons();
installDialogs();
installAutoSubmit();
installRefresh();
installScopePresets();
installWarmProgress();
