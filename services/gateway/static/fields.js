// What the registration page and the manage page share: the answers to the
// event's questions as the API takes them (templates/fields.html.j2 draws the
// fields). A box is true or false; an empty field is left out.
"use strict";

function readAnswers(container) {
  const answers = {};
  for (const el of container.querySelectorAll("[data-question]")) {
    const slug = el.name.slice("answers.".length);
    if (el.dataset.question === "boolean") answers[slug] = el.checked;
    else if (el.value.trim()) answers[slug] = el.value.trim();
  }
  return answers;
}
