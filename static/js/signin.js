// The sign-in form.
import { isSignedIn, signIn } from "./auth.js";

const form = document.getElementById("signin-form");
const errorBox = document.getElementById("signin-error");

function nextUrl() {
  const next = new URLSearchParams(window.location.search).get("next") || "/debates/";
  // Only same-site paths: never an open redirect.
  return next.startsWith("/") && !next.startsWith("//") ? next : "/debates/";
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
