// The attendee's page: confirm a held seat or cancel, then show the new
// status in the page's language (the API's words are English) and reload.
"use strict";

const data = JSON.parse(document.getElementById("page-data").textContent);
const text = data.text;
for (const button of document.querySelectorAll("button[data-action]")) {
  button.addEventListener("click", async () => {
    const url = `/api/v1/registrations/${encodeURIComponent(data.id)}/${button.dataset.action}` +
                `?token=${encodeURIComponent(data.token)}`;
    const status = document.getElementById("status");
    button.disabled = true;
    try {
      const response = await fetch(url, {method: "POST"});
      const body = await response.json();
      if (response.ok) status.textContent = text[body.status] || text.confirmed;
      else status.textContent = response.status === 409 ? text.conflict : text.busy;
      if (response.ok || response.status === 409) setTimeout(() => location.reload(), 1500);
    } catch (error) {
      status.textContent = text.busy;
    } finally {
      button.disabled = false;
    }
  });
}
