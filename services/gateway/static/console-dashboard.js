// An event's dashboard: seats as bars, registrations over time, listeners per
// language, holds and the waiting list, messages. Read again every few
// seconds (and at once when the tab comes back), so it moves by itself.
"use strict";
(() => {
  const {api, text, element, bar, number, moment, say, failed, data} = Console;
  const EVERY = 3000;
  const MIN_HOURS = 24;
  const base = `/api/v1/events/${data.slug}`;
  const SEATED = data.seated;
  let event = null;

  function fill(id, ...nodes) {
    document.getElementById(id).replaceChildren(...nodes);
  }

  const seated = (counts) => SEATED.reduce((sum, status) => sum + (counts[status] || 0), 0);
  const title = (texts, fallback) => (texts && (texts[data.lang] || texts[event.languages[0]])) || fallback;

  function seats(stats) {
    const nodes = [bar(say("event"), stats.seats.used, stats.seats.capacity)];
    if (event.format !== "online") nodes.push(bar(say("in_the_room"), stats.checked_in, seated(stats)));
    fill("seats", ...nodes);
    const pools = [];
    for (const category of event.categories) {
      const counts = stats.per_category[category.slug] || {};
      const pool = counts.seats || {used: seated(counts), capacity: category.capacity};
      pools.push(bar(`${say("category")}: ${title(category.title, category.slug)}`, pool.used, pool.capacity));
    }
    for (const session of event.sessions) {
      const counts = stats.per_session[session.slug] || {};
      const pool = counts.seats || {used: seated(counts), capacity: session.capacity};
      pools.push(bar(`${say("session")}: ${title(session.title, session.slug)}`, pool.used, pool.capacity));
    }
    fill("pools", ...pools);
  }

  function counts(stats) {
    const rows = [];
    for (const [status, name] of Object.entries(text.statuses)) {
      rows.push(element("div", {class: "count", "data-status": status},
        element("dt", {text: name}),
        element("dd", {text: number(stats[status] || 0)})));
    }
    fill("counts", ...rows);
  }

  function listeners(stats) {
    const rows = Object.entries(stats.per_language)
      .map(([code, counts]) => [code, seated(counts) + (counts.waitlisted || 0)])
      .sort((a, b) => b[1] - a[1]);
    const most = Math.max(1, ...rows.map(([, n]) => n));
    const names = new Intl.DisplayNames([data.lang], {type: "language"});
    fill("listeners", ...rows.map(([code, n]) => bar(names.of(code) || code, n, most)));
  }

  function mail(stats) {
    const m = stats.mail;
    const all = Math.max(1, m.sent + m.failed + m.queued);
    fill("mail", bar(text.deliveries.sent, m.sent, all), bar(text.deliveries.queued, m.queued, all),
      bar(text.deliveries.failed, m.failed, all),
      element("dl", {class: "counts"},
        element("div", {}, element("dt", {text: say("undeliverable")}), element("dd", {text: number(m.undeliverable)})),
        element("div", {}, element("dt", {text: say("unsubscribed")}), element("dd", {text: number(m.unsubscribed)}))));
  }

  // Registrations per hour as columns: an SVG drawn from the numbers (no library).
  function timeline(stats) {
    const svg = document.getElementById("timeline");
    const points = stats.timeline;
    const ns = "http://www.w3.org/2000/svg";
    const shape = (tag, attributes) => {
      const node = document.createElementNS(ns, tag);
      for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, v);
      return node;
    };
    svg.replaceChildren();
    const total = points.reduce((sum, [, n]) => sum + n, 0);
    document.getElementById("timeline-summary").textContent = points.length
      ? say("timeline_summary", {count: number(total), first: moment(points[0][0], event.timezone),
        last: moment(points[points.length - 1][0], event.timezone)})
      : say("no_rows");
    if (!points.length) return;
    // At least a day wide, the latest hour at the right: one busy hour is a column, not a wall.
    const last = Date.parse(points[points.length - 1][0]);
    const hours = Math.max(MIN_HOURS, (last - Date.parse(points[0][0])) / 3600000 + 1);
    const start = last - (hours - 1) * 3600000;
    const most = Math.max(...points.map(([, n]) => n));
    const width = 700 / hours;
    svg.append(shape("line", {x1: 10, y1: 160, x2: 710, y2: 160}));
    for (const [hour, n] of points) {
      const x = 10 + ((Date.parse(hour) - start) / 3600000) * width;
      const height = (n / most) * 140;
      const column = shape("rect", {x, y: 160 - height, width: Math.max(1, width - 1), height});
      column.append(shape("title", {}));
      column.firstChild.textContent = `${moment(hour, event.timezone)}: ${number(n)}`;
      svg.append(column);
    }
    const label = shape("text", {x: 12, y: 14});
    label.textContent = number(most);
    svg.append(label);
  }

  function queue(lines) {
    document.querySelector("#holds tbody").replaceChildren(...lines.holds.map((hold) => element("tr", {},
      element("td", {}, element("bdi", {text: hold.name})),
      element("td", {text: hold.category || ""}),
      element("td", {text: moment(hold.hold_expires_at, event.timezone)}))));
    fill("waiting", ...lines.waiting.map((person) => element("li", {},
      element("bdi", {text: person.name}), person.category ? ` (${person.category})` : "")));
    const more = (shown, total) => total > shown ? say("more", {count: number(total - shown)}) : "";
    document.getElementById("holds-more").textContent = lines.holds_total ? more(lines.holds.length, lines.holds_total) : say("none");
    document.getElementById("waiting-more").textContent = lines.waiting_total ? more(lines.waiting.length, lines.waiting_total) : say("none");
  }

  async function refresh() {
    try {
      if (!event) event = (await api(base)).body;
      const [{body: stats}, {body: lines}] = await Promise.all([api(`${base}/stats`), api(`${base}/queue?limit=20`)]);
      seats(stats); counts(stats); listeners(stats); mail(stats); timeline(stats); queue(lines);
      document.getElementById("updated").textContent = say("updated", {time: new Date().toLocaleTimeString(data.lang)});
    } catch (error) {
      failed(error);
    }
  }

  refresh();
  setInterval(() => { if (!document.hidden) refresh(); }, EVERY);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
})();
