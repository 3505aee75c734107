// The attendee's page: confirm a held seat, add a session, stop following or
// cancel, then say what happened in the page's language (the API's words are
// English) and reload to show the registration as it now is. The details form
// (#details) changes their name, language, zone and answers (PATCH); the erase
// button (#erase, enabled by #erase-understood) deletes the registration.
"use strict";

const data = JSON.parse(document.getElementById("page-data").textContent);
const text = data.text;
const resource = `/api/v1/registrations/${encodeURIComponent(data.id)}?token=${encodeURIComponent(data.token)}`;

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

// -- the details form ------------------------------------------------------------
const details = document.getElementById("details");

function clearErrors() {
  for (const p of details.querySelectorAll(".error")) { p.hidden = true; p.textContent = ""; }
  for (const el of details.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
}

// The answers replace the stored ones (fields.js reads them).
function detailsBody() {
  return {name: document.getElementById("name").value.trim(),
          language: document.getElementById("language").value,
          timezone: document.getElementById("timezone").value, answers: readAnswers(details)};
}

function localChecks(body) {
  const problems = [];
  if (!body.name) problems.push({field: "name", message: text.required});
  for (const el of details.querySelectorAll("[data-question][required]")) {
    if (!el.value.trim()) problems.push({field: el.id, message: text.required});
  }
  return problems;
}

// The API's field messages are English: in another language the page says
// it in its own words, still next to the field the server named.
function inPageLanguage(problem) {
  return {field: problem.field, message: data.lang === "en" ? problem.message : text.invalid};
}

// Each problem next to its field (#<field>-error: "name", "language",
// "timezone", "answers.<slug>"); the summary above (#details-error) says
// there are some, or what went wrong, and takes the focus.
function report(problems, summary) {
  for (const problem of problems) {
    const slot = document.getElementById(problem.field + "-error");
    if (!slot) continue;
    slot.textContent = problem.message;
    slot.hidden = false;
    const field = document.getElementById(problem.field);
    if (field) field.setAttribute("aria-invalid", "true");
  }
  const general = document.getElementById("details-error");
  general.textContent = summary;
  general.hidden = false;
  general.focus();
}

if (details) {
  details.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    document.getElementById("details-said").textContent = "";
    const body = detailsBody();
    const problems = localChecks(body);
    if (problems.length) return report(problems, text.check);
    const button = document.getElementById("save");
    button.disabled = true;
    try {
      const response = await fetch(resource, {method: "PATCH", body: JSON.stringify(body),
                                          headers: {"Content-Type": "application/json"}});
      if (response.ok) {
        // the page may now be in another language: show it as it is
        document.getElementById("details-said").textContent = text.saved;
        setTimeout(() => location.reload(), 1000);
        return;
      }
      if (response.status === 422) {
        const answer = await response.json();
        return report((answer.errors || []).map(inPageLanguage), text.check);
      }
      if (response.status === 409) {
        report([], text.conflict);
        setTimeout(() => location.reload(), 1500);
        return;
      }
      report([], text.busy);
    } catch (error) {
      report([], text.busy);
    } finally {
      button.disabled = false;
    }
  });
}

// -- erasing -----------------------------------------------------------------------
const erase = document.getElementById("erase");
const understood = document.getElementById("erase-understood");

understood.addEventListener("change", () => { erase.disabled = !understood.checked; });
erase.disabled = !understood.checked;

// Once erased the page's links are dead: the page says so in place of all it
// showed (#erased), and does not reload. 404: erased already (another tab).
erase.addEventListener("click", async () => {
  if (!understood.checked) return;
  const said = document.getElementById("erase-said");
  erase.disabled = true;
  try {
    const response = await fetch(resource, {method: "DELETE"});
    if (response.status === 204 || response.status === 404) {
      const done = document.createElement("h1");
      done.id = "erased";
      done.tabIndex = -1;
      done.textContent = text.erased;
      document.querySelector("main").replaceChildren(done);
      done.focus();
      return;
    }
    said.textContent = text.busy;
  } catch (error) {
    said.textContent = text.busy;
  }
  erase.disabled = !understood.checked;
});
