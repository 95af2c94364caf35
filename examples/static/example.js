// The example's pages keep in step with the other tabs (no inline script: a strict CSP holds).
import { handleSession, handleSilentRefresh } from "/auth/lucia.js";

handleSession(() => location.reload()); // another tab signed in or out
handleSilentRefresh(); // keep the access token fresh
