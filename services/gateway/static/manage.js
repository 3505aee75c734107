// The attendee's page: confirm a held seat, add a session, stop following or
// cancel, then say what happened in the page's language (the API's words are
// English) and reload to show the registration as it now is.
"use strict";

const data = JSON.parse(document.getElementById("page-data").textContent);
const text = data.text;

// A session button (data-session) posts its slug to /sessions; the others
// (data-action) post to /<action> with no body.
function request(button) {
  const path = button.dataset.session ? "sessions" : button.dataset.action;
  const url = `/api/v1/registrations/${encodeURIComponent(data.id)}/${path}` +
              `?token=${encodeURIComponent(data.token)}`;
  if (!button.dataset.session) return [url, {method: "POST"}];
  return [url, {method: "POST", headers: {"Content-Type": "application/json"},
                body: JSON.stringify({session: button.dataset.session})}];
}

function said(button, response, body) {
  if (response.ok) {
    // an added session is decided a moment later: the reload shows it
    if (button.dataset.session) return text.session_asked;
    if (button.dataset.action === "unfollow") return text.unfollowed;
    return text[body.status] || text.confirmed;
  }
  if (response.status === 409) return text.conflict;
  if (response.status === 422) return text.session_gone;      // cancelled meanwhile
  return text.busy;
}

for (const button of document.querySelectorAll("button[data-action], button[data-session]")) {
  button.addEventListener("click", async () => {
    const output = document.getElementById(button.dataset.say || "status");
    button.disabled = true;
    try {
      const response = await fetch(...request(button));
      const body = await response.json();
      output.textContent = said(button, response, body);
      if (response.ok || response.status === 409 || response.status === 422) {
        setTimeout(() => location.reload(), button.dataset.session ? 2500 : 1500);
      }
    } catch (error) {
      output.textContent = text.busy;
    } finally {
      button.disabled = false;
    }
  });
}
