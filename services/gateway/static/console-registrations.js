// The registrations table: searched and filtered on the server, a page at a
// time (the API's cursor); a row opens the answers, the message history and
// the actions; the export links follow the filters.
"use strict";
(() => {
  const {api, text, element, moment, say, failed, notice, data} = Console;
  const PAGE = 50;
  const base = `/api/v1/events/${data.slug}`;
  const questions = JSON.parse(document.getElementById("questions").textContent);
  const form = document.getElementById("filters");
  const body = document.querySelector("#registrations tbody");
  const cursors = [null];           // the cursor of each page shown so far
  let page = 0;
  let zone = "UTC";
  const categoryTitles = {};
  const languageNames = new Intl.DisplayNames([data.lang], {type: "language"});

  function filters() {
    const query = new URLSearchParams();
    for (const [name, value] of new FormData(form)) if (value.trim()) query.set(name, value.trim());
    return query;
  }

  function exports() {
    for (const format of ["csv", "xlsx"]) {
      const query = filters();
      query.set("format", format);
      document.getElementById(`export-${format}`).href = `${base}/registrations?${query}`;
    }
  }

  async function load() {
    const query = filters();
    query.set("limit", PAGE);
    if (cursors[page]) query.set("after", cursors[page]);
    try {
      const {body: rows, headers} = await api(`${base}/registrations?${query}`);
      const link = headers.get("Link");
      cursors[page + 1] = link ? new URLSearchParams(link.slice(link.indexOf("?") + 1, link.indexOf(">"))).get("after") : null;
      body.replaceChildren(...rows.map(row));
      if (!rows.length) body.append(element("tr", {}, element("td", {colspan: 7, text: say("no_rows")})));
      document.getElementById("previous").disabled = page === 0;
      document.getElementById("next").disabled = !cursors[page + 1];
      document.getElementById("page-of").textContent = say("page", {page: page + 1});
    } catch (error) {
      failed(error);
    }
  }

  function row(registration) {
    const open = element("button", {type: "button", class: "small", "aria-expanded": "false",
      "data-id": registration.id, text: say("details")});
    open.addEventListener("click", () => toggle(open, registration));
    return element("tr", {"data-id": registration.id},
      element("td", {}, element("bdi", {text: registration.name})),
      element("td", {}, element("bdi", {text: registration.email})),
      element("td", {class: "status", text: text.statuses[registration.status] || registration.status}),
      element("td", {text: categoryTitles[registration.category] || registration.category || ""}),
      element("td", {text: languageNames.of(registration.language) || registration.language}),
      element("td", {text: moment(registration.created_at, zone)}),
      element("td", {}, open));
  }

  async function toggle(button, registration) {
    const next = button.closest("tr").nextElementSibling;
    if (button.getAttribute("aria-expanded") === "true") {
      if (next && next.classList.contains("detail")) next.remove();
      button.setAttribute("aria-expanded", "false");
      return;
    }
    const detail = document.getElementById("detail").content.firstElementChild.cloneNode(true);
    const answers = detail.querySelector(".answers");
    const given = registration.answers || {};
    for (const question of questions) {
      if (!(question.slug in given)) continue;
      const value = given[question.slug];
      answers.append(element("dt", {text: question.label[data.lang] || Object.values(question.label)[0]}),
        element("dd", {}, element("bdi", {text: typeof value === "boolean" ? say(value ? "yes" : "no") : value})));
    }
    if (!answers.children.length) answers.append(element("dd", {text: say("no_answers")}));
    for (const action of detail.querySelectorAll("[data-action]")) {
      action.addEventListener("click", () => act(action.dataset.action, registration, detail, action));
    }
    button.closest("tr").after(detail);
    button.setAttribute("aria-expanded", "true");
    try {
      const {body: messages} = await api(`/api/v1/registrations/${registration.id}/messages`);
      const history = detail.querySelector(".history tbody");
      history.replaceChildren(...messages.map((message) => element("tr", {},
        element("td", {text: text.kinds[message.kind] || message.kind}),
        element("td", {}, element("bdi", {text: message.subject || ""})),
        element("td", {text: text.deliveries[message.status] || message.status}),
        element("td", {text: moment(message.sent_at || message.created_at, zone)}))));
      if (!messages.length) history.append(element("tr", {}, element("td", {colspan: 4, text: say("no_messages")})));
    } catch (error) {
      failed(error);
    }
  }

  async function act(action, registration, detail, button) {
    const path = `/api/v1/registrations/${registration.id}`;
    button.disabled = true;             // one click, one message
    try {
      if (action === "resend") {
        await api(`${path}/messages/resend`, {method: "POST"});
        notice(say("resent"));
      } else if (action === "cancel") {
        if (!window.confirm(say("confirm_cancel"))) return;
        await api(`${path}/cancel`, {method: "POST"});
        notice(say("cancelled"));
      } else if (action === "erase") {
        if (!window.confirm(say("confirm_erase"))) return;
        await api(path, {method: "DELETE"});
        notice(say("erased"));
      }
      if (action !== "resend") { detail.remove(); load(); }
    } catch (error) {
      if (action === "resend" && error.status === 409) notice(say("nothing_to_resend"), true);
      else failed(error);
    } finally {
      button.disabled = false;
    }
  }

  form.addEventListener("submit", (submitted) => {
    submitted.preventDefault();
    cursors.length = 1;
    page = 0;
    exports();
    load();
  });
  for (const select of form.querySelectorAll("select")) {
    select.addEventListener("change", () => form.requestSubmit());
  }
  document.getElementById("next").addEventListener("click", () => { page += 1; load(); });
  document.getElementById("previous").addEventListener("click", () => { page = Math.max(0, page - 1); load(); });

  api(base).then(({body: event}) => {
    zone = event.timezone;
    for (const category of event.categories) {
      const titles = category.title || {};
      categoryTitles[category.slug] = titles[data.lang] || titles[event.languages[0]] || category.slug;
    }
  }).catch(() => {}).finally(() => { exports(); load(); });
})();
