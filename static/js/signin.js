// The sign-in form.
import { isSignedIn, signIn } from "./auth.js";

const form = document.getElementById("signin-form");
const errorBox = document.getElementById("signin-error");

const DEFAULT_NEXT = "/debates/";

/** Where to go after signing in: `next` when it is a path of this site, else the list. */
export function safeNext(next, origin = window.location.origin) {
  // Browsers read "/\\host", "/\thost" (tabs and newlines are dropped) and "//host" as another
  // site: refuse anything but a plain path, then check what the URL parser makes of it.
  if (typeof next !== "string" || !next.startsWith("/") || /^\/[\\/]/.test(next)) return DEFAULT_NEXT;
  if (/[\u0000-\u001f\u007f\\]/.test(next)) return DEFAULT_NEXT;
  let url;
  try {
    url = new URL(next, origin);
  } catch {
    return DEFAULT_NEXT;
  }
  if (url.origin !== origin || url.pathname.startsWith("//")) return DEFAULT_NEXT;
  return url.pathname + url.search + url.hash;
}

function nextUrl() {
  return safeNext(new URLSearchParams(window.location.search).get("next") || DEFAULT_NEXT);
}

if (isSignedIn() && new URLSearchParams(window.location.search).has("next")) {
  window.location.replace(nextUrl());
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  errorBox.hidden = true;
  const username = form.username.value.trim();
  const password = form.password.value;
  if (!username || !password) {
    errorBox.textContent = "Enter your username and password.";
    errorBox.hidden = false;
    return;
  }
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    await signIn(username, password);
    window.location.assign(nextUrl());
  } catch (error) {
    errorBox.textContent = error.message;
    errorBox.hidden = false;
    form.password.focus();
  } finally {
    button.disabled = false;
  }
});
