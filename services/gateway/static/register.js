// The registration page: posts the form to the API, shows errors next to their
// fields, then waits for the decision and shows it.
"use strict";

const data = JSON.parse(document.getElementById("page-data").textContent);
const form = document.getElementById("registration");
const text = data.text;

// A zone is named as the emails name it: by the server (data-zone-name on the
// session's time, data-name on each zone of the form: the event's label or the
// zone's city, from CLDR), else by its GMT offset at that moment, as CLDR writes
// it ("غرينتش+05:30"). Never the browser's "short" name ("غرينتش+2", "Israel Time").
function zoneName(zone, when, name) {
  if (name) return name;
  const part = new Intl.DateTimeFormat(locale(), {timeZone: zone, timeZoneName: "longOffset"})
    .formatToParts(when).find((p) => p.type === "timeZoneName");
  return part ? part.value : "";
}

// Dates as the reader's country writes them when it is known (ar-IQ: "كانون الأول"),
// from the form, else from the browser (the server's data.country).
function locale() {
  const country = form.country.value || data.country;
  return country ? `${data.lang}-${country}` : data.lang;
}

function chosenZone() {
  const option = document.getElementById("timezone").selectedOptions[0];
  return option ? {zone: option.value, name: option.dataset.name} : null;
}

// dateStyle cannot be combined with timeZone in every browser: name the parts.
// Urdu names the part of the day ("سہ پہر"), not a Latin "PM" (as shared/dates.py).
function moment(when, zone, name) {
  const local = new Intl.DateTimeFormat(locale(), {
    weekday: "long", year: "numeric", month: "long", day: "numeric", hour: "numeric",
    minute: "2-digit", timeZone: zone, ...(data.lang === "ur" ? {dayPeriod: "short"} : {})}).format(when);
  const named = zoneName(zone, when, name);
  return named ? `${local} (${named})` : local;
}

function formatTimes() {
  // The attendee's zone: the one chosen in the form (preselected from the browser).
  const chosen = chosenZone();
  for (const time of document.querySelectorAll("time[data-event-zone]")) {
    const when = new Date(time.getAttribute("datetime"));
    const eventZone = time.dataset.eventZone;
    let label = moment(when, eventZone, time.dataset.zoneName);
    if (chosen && chosen.zone !== eventZone && offset(when, chosen.zone) !== offset(when, eventZone)) {
      label += " · " + moment(when, chosen.zone, chosen.name);
    }
    time.textContent = label;
  }
}

// Two zones at the same offset at that moment read the same: shown once, as in the emails.
function offset(when, zone) {
  return new Intl.DateTimeFormat("en", {timeZone: zone, timeZoneName: "longOffset"})
    .formatToParts(when).find((p) => p.type === "timeZoneName").value;
}

// The browser's zone, which may be an older id of a listed one ("Asia/Calcutta").
function preselectZone() {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const option = [...document.getElementById("timezone").options]
    .find((o) => o.dataset.ids.split(" ").includes(zone));
  if (option) option.selected = true;
}

// The search box narrows the list to the zones whose city, country or offset
// holds every word typed, in any case, with or without accents or vowel marks.
function fold(value) {
  return value.normalize("NFD").replace(/\p{Mn}/gu, "").toLocaleLowerCase(data.lang);
}

function searchZones() {
  const words = fold(document.getElementById("timezone-search").value).split(/\s+/).filter(Boolean);
  const select = document.getElementById("timezone");
  let shown = 0;
  let first = null;
  for (const option of select.options) {
    const match = words.every((word) => fold(option.dataset.search + " " + option.text).includes(word));
    option.hidden = !match;
    if (match) { shown += 1; first = first || option; }
  }
  for (const group of select.querySelectorAll("optgroup")) {
    group.hidden = ![...group.children].some((option) => !option.hidden);
  }
  if (first && select.selectedOptions[0] && select.selectedOptions[0].hidden) {
    first.selected = true;
    formatTimes();
  }
  document.getElementById("timezone-found").textContent = words.length && !shown ? text.no_zone : "";
}

function clearErrors() {
  for (const p of form.querySelectorAll(".error")) { p.hidden = true; p.textContent = ""; }
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
}

function showError(field, message) {
  const slot = document.getElementById(field + "-error");
  const target = document.getElementById(field);
  if (!slot) return false;
  slot.textContent = message;
  slot.hidden = false;
  if (target) target.setAttribute("aria-invalid", "true");
  return true;
}

// Following the series (sessions added later become theirs) means holding every
// open session: the box is off and disabled while one is unchecked.
const follow = document.getElementById("follow");

function openSessions() {
  return [...form.querySelectorAll("input[name=sessions]:not(:disabled)")];
}

function updateFollow() {
  if (!follow) return;
  const all = openSessions().every((input) => input.checked);
  follow.disabled = !all;
  if (!all) follow.checked = false;
}

// A registration without "sessions" follows the event; with them it holds those only.
function chosenSessions() {
  const chosen = openSessions().filter((input) => input.checked).map((input) => input.value);
  const following = follow && follow.checked && chosen.length === openSessions().length;
  return following ? undefined : chosen;
}

function body() {
  const result = {name: form.name.value.trim(), email: form.email.value.trim(),
                  language: form.language.value, timezone: form.timezone.value,
                  sessions: chosenSessions(), answers: readAnswers(form)};   // fields.js
  if (result.sessions === undefined) delete result.sessions;
  if (form.country.value) result.country = form.country.value;
  const category = form.querySelector("input[name=category]:checked");
  if (category) result.category = category.value;
  return result;
}

function localChecks(values) {
  const problems = [];
  if (!values.name) problems.push({field: "name", message: text.required});
  if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(values.email)) problems.push({field: "email", message: text.bad_email});
  if (values.sessions && !values.sessions.length) problems.push({field: "sessions", message: text.choose_session});
  if (form.querySelector("input[name=category]") && !values.category) {
    problems.push({field: "category", message: text.required});
  }
  for (const el of form.querySelectorAll("[data-question][required]")) {
    if (!el.value.trim()) problems.push({field: el.id, message: text.required});
  }
  return problems;
}

// The API's field messages are English: in another language the page says
// it in its own words, still next to the field the server named.
function inPageLanguage(problem) {
  if (data.lang === "en") return problem;
  return {field: problem.field, message: problem.field === "email" ? text.bad_email : text.invalid};
}

function report(problems) {
  let first = null;
  for (const problem of problems) {
    const field = problem.field === "body" ? null : problem.field;
    if (field && showError(field, problem.message)) {
      first = first || document.getElementById(field);
    } else {
      const general = document.getElementById("form-error");
      general.textContent = problem.message;
      general.hidden = false;
    }
  }
  (first || document.getElementById("form-error")).focus();
}

function showOutcome(title, detail, link) {
  const section = document.getElementById("outcome");
  document.getElementById("outcome-title").textContent = title;
  document.getElementById("outcome-text").textContent = detail || "";
  const anchor = document.getElementById("outcome-link");
  if (link) { anchor.href = link; anchor.hidden = false; }
  section.hidden = false;
  section.dataset.status = title;
  document.getElementById("outcome-title").focus();
}

function describe(registration, links) {
  const status = registration.status;
  section().dataset.state = status;
  if (status === "confirmed") return showOutcome(text.confirmed, text.confirmed_detail, links.manage);
  if (status === "held") {
    const chosen = chosenZone();
    const deadline = chosen ? moment(new Date(registration.hold_expires_at), chosen.zone, chosen.name)
      : new Intl.DateTimeFormat(locale(), {dateStyle: "full", timeStyle: "short"})
        .format(new Date(registration.hold_expires_at));
    return showOutcome(text.held, text.held_detail.replace("{deadline}", deadline), links.manage);
  }
  if (status === "waitlisted") {
    return showOutcome(text.waitlisted,
                       text.waitlisted_detail.replace("{position}", registration.waitlist_position),
                       links.manage);
  }
  if (status === "rejected") return showOutcome(text.rejected, text.rejected_detail);
  return showOutcome(text.pending, text.pending_detail, links.manage);
}

function section() { return document.getElementById("outcome"); }

async function waitForDecision(answer) {
  for (let round = 0; round < 10; round++) {
    const response = await fetch(answer.links.self + "&wait=20");
    if (!response.ok) break;
    const registration = await response.json();
    describe(registration, answer.links);
    if (registration.status !== "pending") return;
  }
}

const idempotencyKey = (crypto.randomUUID && crypto.randomUUID()) || String(Math.random()).slice(2);

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors();
  const values = body();
  const problems = localChecks(values);
  if (problems.length) return report(problems);
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const response = await fetch(data.endpoint, {
      method: "POST", body: JSON.stringify(values),
      headers: {"Content-Type": "application/json", "Idempotency-Key": idempotencyKey}});
    const answer = await response.json();
    if (response.status === 202) {
      form.hidden = true;
      describe({status: "pending"}, answer.links);
      await waitForDecision(answer);
      return;
    }
    if (response.status === 409) return report([{field: "email", message: text.already}]);
    if (response.status === 422 && answer.errors) return report(answer.errors.map(inPageLanguage));
    if (response.status === 429) return report([{field: "body", message: text.busy}]);
    report([{field: "body", message: text.busy}]);     // the API's own words are English
  } catch (error) {
    report([{field: "body", message: text.busy}]);
  } finally {
    button.disabled = false;
  }
});

preselectZone();
formatTimes();
document.getElementById("timezone").addEventListener("change", formatTimes);
form.country.addEventListener("change", formatTimes);
document.querySelector(".zone-search").hidden = false;
document.getElementById("timezone-search").addEventListener("input", searchZones);
for (const input of openSessions()) input.addEventListener("change", updateFollow);
updateFollow();
