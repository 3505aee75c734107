// The organiser console's shared helpers: every page script reads and
// changes the event through the public API with the console's session (the
// cookie goes by itself; a change carries the session's CSRF token).
"use strict";
const Console = (() => {
  const data = JSON.parse(document.getElementById("page-data").textContent);
  const text = data.text;

  // A sentence of the catalog with its %(name)s filled in (as text, never HTML).
  function say(key, values = {}) {
    return (text[key] || key).replace(/%\((\w+)\)s/g, (_, name) => String(values[name] ?? ""));
  }

  function number(value) {
    return new Intl.NumberFormat(data.lang).format(value);
  }

  function moment(iso, zone, options = {dateStyle: "medium", timeStyle: "short"}) {
    if (!iso) return "";
    return new Intl.DateTimeFormat(data.lang, {...options, timeZone: zone}).format(new Date(iso));
  }

  class ApiError extends Error {
    constructor(status, problem) {
      super(problem.detail || problem.title || String(status));
      this.status = status;
      this.problem = problem;
    }
  }

  // fetch() of our API: JSON in, JSON out, a problem document as an ApiError.
  async function api(path, {method = "GET", body, headers = {}, media = "application/json"} = {}) {
    const options = {method, headers: {...headers}, credentials: "same-origin"};
    if (method !== "GET") options.headers["X-CSRF-Token"] = data.csrf;
    if (body !== undefined) {
      options.headers["Content-Type"] = media;
      options.body = JSON.stringify(body);
    }
    const response = await fetch(path, options);
    if (response.status === 401) {
      notice(say("signed_out"), true);
      throw new ApiError(401, {});
    }
    const type = response.headers.get("Content-Type") || "";
    const payload = type.includes("json") ? await response.json() : null;
    if (!response.ok) throw new ApiError(response.status, payload || {});
    return {body: payload, headers: response.headers};
  }

  // The page's one line of news (role=status): what just happened, or went wrong.
  function notice(message, bad = false) {
    const line = document.getElementById("notice");
    line.textContent = message;
    line.classList.toggle("error", bad);
    line.hidden = !message;
  }

  function failed(error) {
    if (error.status === 401) return;
    notice(error.status === 403 ? say("forbidden") : error.status >= 500 || !error.status
      ? say("busy") : error.message, true);
  }

  // An element with attributes and children (text or elements).
  function element(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (value === false || value === null || value === undefined) continue;
      if (name === "text") node.textContent = value;
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children) node.append(child);
    return node;
  }

  // Field errors of a problem document next to their fields: an error's
  // "field" is the id of its input, and "<id>-error" holds its message.
  function showFieldErrors(form, problem) {
    clearFieldErrors(form);
    let first = null;
    for (const {field, message} of problem.errors || []) {
      const input = document.getElementById(field) || form.querySelector(`[data-field="${CSS.escape(field)}"]`);
      const line = document.getElementById(`${field}-error`) || form.querySelector(`[data-error-of="${CSS.escape(field)}"]`);
      if (input) { input.setAttribute("aria-invalid", "true"); first = first || input; }
      if (line) { line.textContent = message; line.hidden = false; }
      else notice(`${field}: ${message}`, true);
    }
    if (first) first.focus();
    return first !== null;
  }

  function clearFieldErrors(form) {
    form.querySelectorAll("[aria-invalid=true]").forEach((node) => node.removeAttribute("aria-invalid"));
    form.querySelectorAll(".error[id$='-error'], [data-error-of]").forEach((node) => {
      node.textContent = "";
      node.hidden = true;
    });
  }

  // A bar of a pool: a <meter>-like progress element with its words beside it.
  function bar(label, used, capacity) {
    const words = capacity === null || capacity === undefined
      ? `${number(used)} (${say("unlimited")})`
      : say("of", {used: number(used), capacity: number(capacity)});
    const id = `bar-${Math.random().toString(36).slice(2)}`;
    const row = element("div", {class: "bar"},
      element("span", {class: "bar-label", id, text: label}));
    const meter = element("progress", {"aria-labelledby": id,
      max: capacity || Math.max(used, 1), value: used});
    row.append(meter, element("span", {class: "bar-value", text: words}));
    return row;
  }

  return {data, text, say, number, moment, api, ApiError, notice, failed, element, bar,
          showFieldErrors, clearFieldErrors};
})();
