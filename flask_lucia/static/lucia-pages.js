// flask-lucia's built-in pages: the one script they load (no inline script or style, so a
// strict Content-Security-Policy like `default-src 'self'` holds). It wires elements by
// their data-lucia-* attributes (docs/pages.rst) and, like an app's pages, reloads a page
// when another tab signs in or out, so no page shows buttons of a session that is gone.
import { handleSession, registerPasskey, signInWithPasskey } from "./lucia.js";

const passkeysHere = !!(window.PublicKeyCredential && navigator.credentials);

handleSession(() => location.reload());

// A path on this site from a data-next attribute; anything else goes home.
function sameSite(value) {
  const url = new URL(value || "/", location.href);
  return url.origin === location.origin ? url.pathname + url.search + url.hash : "/";
}

// What a person reads when a passkey ceremony fails: the server's sentence (ours), else
// plain words for the browser's errors (its own messages are for developers). The page
// gives them in its language as data-* attributes (data-invalid-state, data-security,
// data-not-supported, data-failed); these English words are the fallback.
const BROWSER_WORDS = {
  InvalidStateError: ["invalidState", "This device already has a passkey for your account."],
  SecurityError: ["security", "Passkeys cannot be used at this address of the site."],
  NotSupportedError: ["notSupported", "This browser cannot use passkeys here."],
};
function words(element, e, fallback) {
  if (e && e.name === "LuciaError" && e.message && e.message !== e.code) return e.message;
  const known = e && BROWSER_WORDS[e.name];
  if (known) return element.dataset[known[0]] || known[1];
  return element.dataset.failed || fallback;
}

// Show an error of a passkey ceremony in the element named by data-error.
function reporter(element) {
  const box = document.getElementById(element.dataset.error || "");
  return {
    clear() {
      if (box) box.hidden = true;
    },
    show(e, fallback) {
      if (!box) return;
      box.textContent = words(element, e, fallback);
      box.hidden = false;
    },
  };
}

// <button data-lucia-passkey-sign-in data-next="/dashboard" data-error="id" hidden>
for (const button of document.querySelectorAll("[data-lucia-passkey-sign-in]")) {
  if (!passkeysHere) continue;
  const errors = reporter(button);
  button.hidden = false;
  button.addEventListener("click", async () => {
    errors.clear();
    try {
      await signInWithPasskey();
      location.assign(sameSite(button.dataset.next));
    } catch (e) {
      if (e && (e.name === "NotAllowedError" || e.name === "AbortError")) return; // cancelled
      errors.show(e, "That passkey did not work. Try again.");
    }
  });
}

// <div data-lucia-add-passkey data-confirm="/auth/confirm?next=..." data-error="id" hidden>
// holding an <input> (the name) and a <button>.
for (const box of document.querySelectorAll("[data-lucia-add-passkey]")) {
  if (!passkeysHere) continue;
  const errors = reporter(box);
  const input = box.querySelector("input");
  box.hidden = false;
  box.querySelector("button").addEventListener("click", async () => {
    errors.clear();
    try {
      await registerPasskey((input && input.value) || undefined);
      location.reload();
    } catch (e) {
      if (e && (e.name === "NotAllowedError" || e.name === "AbortError")) return; // cancelled
      if (e && e.status === 401) return location.assign(sameSite(box.dataset.confirm));
      errors.show(e, "The passkey could not be added.");
    }
  });
}

// Recovery codes: <ul data-lucia-codes>, and buttons data-lucia-copy / -download / -print
// (hidden until this script shows them; without it the browser's own copy and print work).
const codes = document.querySelector("[data-lucia-codes]");
if (codes) {
  const text = () =>
    [...codes.querySelectorAll("li")].map((li) => li.textContent.trim()).join("\n") + "\n";
  const status = document.getElementById(codes.dataset.status || "");
  // The page's words (data-copied, data-copy-failed, data-downloaded), else English.
  const say = (key, english) => {
    if (status) status.textContent = codes.dataset[key] || english;
  };
  for (const button of document.querySelectorAll("[data-lucia-copy]")) {
    if (!navigator.clipboard) continue;
    button.hidden = false;
    button.addEventListener("click", () =>
      navigator.clipboard.writeText(text()).then(
        () => say("copied", "Copied. Paste them somewhere safe."),
        () => say("copyFailed", "Copying did not work here: select the codes and copy them."),
      ),
    );
  }
  for (const button of document.querySelectorAll("[data-lucia-download]")) {
    button.hidden = false;
    button.addEventListener("click", () => {
      const link = document.createElement("a");
      link.href = URL.createObjectURL(new Blob([text()], { type: "text/plain" }));
      link.download = button.dataset.luciaDownload || "recovery-codes.txt";
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 1000);
      say("downloaded", "Downloaded. Keep the file somewhere safe.");
    });
  }
  for (const button of document.querySelectorAll("[data-lucia-print]")) {
    button.hidden = false;
    button.addEventListener("click", () => window.print());
  }
}
