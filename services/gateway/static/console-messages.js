// Messages: an announcement written in each of the event's languages, seen
// as its readers will before it goes; and every kind of message attendees
// receive, in every language, as it looks today.
"use strict";
(() => {
  const {api, say, notice, failed, showFieldErrors, clearFieldErrors, data} = Console;
  const base = `/api/v1/events/${data.slug}`;
  const form = document.getElementById("announcement");
  const languages = [...form.querySelectorAll("[data-language]")].map((input) => input.dataset.language);
  // One key per announcement written: a second click on "send" sends nothing twice.
  let key = crypto.randomUUID();

  const value = (id) => document.getElementById(id).value.trim();

  for (const button of form.querySelectorAll("[data-preview]")) {
    button.addEventListener("click", async () => {
      const language = button.dataset.preview;
      const shown = document.getElementById(`preview-${language}`);
      try {
        clearFieldErrors(form);
        const {body: preview} = await api(`${base}/announcements/preview`, {method: "POST",
          body: {language, subject: value(`subject.${language}`), body: value(`body.${language}`)}});
        shown.hidden = false;
        shown.querySelector(".preview-subject").textContent = preview.subject;
        shown.querySelector(".preview").textContent = preview.text;
        shown.querySelector("iframe").srcdoc = preview.html;
      } catch (error) {
        if (error.status === 422) showFieldErrors(form, {errors: (error.problem.errors || []).map(
          ({field, message}) => ({field: `${field}.${language}`, message}))});
        else failed(error);
      }
    });
  }

  form.addEventListener("submit", async (submitted) => {
    submitted.preventDefault();
    clearFieldErrors(form);
    const subject = {}, body = {};
    for (const language of languages) {
      if (value(`subject.${language}`)) subject[language] = value(`subject.${language}`);
      if (value(`body.${language}`)) body[language] = value(`body.${language}`);
    }
    try {
      const {body: sent} = await api(`${base}/announcements`, {method: "POST", body: {subject, body},
        headers: {"Idempotency-Key": key}});
      notice(say("sent", {count: sent.recipients}));
      form.reset();
      key = crypto.randomUUID();
    } catch (error) {
      if (error.status === 422 && showFieldErrors(form, error.problem)) notice(say("check"), true);
      else if (error.status === 422) {
        const line = document.getElementById("announcement-error");
        line.textContent = (error.problem.errors || []).map((e) => e.message).join(" ") || say("check");
        line.hidden = false;
      } else failed(error);
    }
  });

  document.getElementById("kinds").addEventListener("submit", async (submitted) => {
    submitted.preventDefault();
    const kind = value("kind"), language = value("kind-language");
    try {
      const {body: preview} = await api(`${base}/messages/${kind}/preview?language=${language}`);
      document.getElementById("kind-subject").textContent = preview.subject;
      document.getElementById("kind-text").textContent = preview.text;
      document.getElementById("kind-html").srcdoc = preview.html;
      document.getElementById("kind-preview").hidden = false;
    } catch (error) {
      failed(error);
    }
  });
})();
