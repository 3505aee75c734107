// The events list: every event the key reaches, soonest first.
"use strict";
(async () => {
  const {api, element, moment, number, say, failed, data} = Console;
  const body = document.querySelector("#events tbody");
  try {
    const {body: events} = await api("/api/v1/events");
    const first = (event) => event.sessions.map((s) => s.starts_at).sort()[0];
    events.sort((a, b) => first(a).localeCompare(first(b)));
    for (const event of events) {
      const title = event.title[data.lang] || event.title[event.languages[0]];
      const link = element("a", {href: `/admin/events/${event.slug}`, text: title});
      body.append(element("tr", {},
        element("td", {}, link),
        element("td", {text: moment(first(event), event.timezone)}),
        element("td", {text: say(`format_${event.format}`)}),
        element("td", {text: event.capacity === null ? say("unlimited") : number(event.capacity)})));
    }
    document.getElementById("no-events").hidden = events.length > 0;
  } catch (error) {
    failed(error);
  }
})();
