// Dashboard login: sends the password as JSON; on success the server sets the session cookie and /admin
// shows the dashboard.
const form = document.getElementById("login-form");
const error = document.getElementById("login-error");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.hidden = true;
  const password = document.getElementById("password").value;
  let answer = { ok: false, error: "no answer from the server" };
  try {
    const response = await fetch("/admin/login", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ password }), credentials: "same-origin",
    });
    answer = await response.json();
  } catch (err) {
    answer = { ok: false, error: `could not reach the server (${err.message})` };
  }
  if (answer.ok) {
    window.location.replace("/admin");
  } else {
    error.textContent = answer.error;
    error.hidden = false;
  }
});
