// The header: who is signed in, and the sign-out button.
import { getAuth, signOut } from "./auth.js";

function render() {
  const auth = getAuth();
  const signedIn = Boolean(auth?.refresh);
  const user = document.querySelector("[data-auth-user]");
  const signout = document.querySelector("[data-signout]");
  const signinLink = document.querySelector("[data-signin-link]");
  if (user) {
    user.textContent = signedIn ? auth.username || "" : "";
    user.hidden = !signedIn;
  }
  if (signout) signout.hidden = !signedIn;
  if (signinLink) signinLink.hidden = signedIn || document.body.dataset.page === "signin";
}

document.querySelector("[data-signout]")?.addEventListener("click", async () => {
  await signOut();
  window.location.assign("/signin/");
});
window.addEventListener("auth-changed", render);
render();
