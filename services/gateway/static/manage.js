// The attendee's page: confirm a held seat or cancel.
"use strict";

const data = JSON.parse(document.getElementById("page-data").textContent);
for (const button of document.querySelectorAll("button[data-action]")) {
  button.addEventListener("click", async () => {
    const url = `/api/v1/registrations/${encodeURIComponent(data.id)}/${button.dataset.action}` +
                `?token=${encodeURIComponent(data.token)}`;
    const response = await fetch(url, {method: "POST"});
    const body = await response.json();
    document.getElementById("status").textContent = response.ok ? body.status : (body.detail || body.title);
    if (response.ok) setTimeout(() => location.reload(), 1500);
  });
}
