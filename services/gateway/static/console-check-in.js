// The door: a code typed or scanned (a USB scanner types it and presses
// Enter), or a name found; who it is, or why not; and the room's count.
"use strict";
(() => {
  const {api, text, element, say, number, moment, failed, data} = Console;
  const base = `/api/v1/events/${data.slug}/check-ins`;
  const code = document.getElementById("code");
  const result = document.getElementById("result");

  function room(counts) {
    document.getElementById("room").textContent = say("room", {count: number(counts.checked_in),
      seats: number(counts.seats)});
  }

  function show(ok, ...lines) {
    result.className = `result ${ok ? "ok" : "refused"}`;
    result.replaceChildren(...lines.map((line) => element("p", {}, line)));
    result.hidden = false;
  }

  async function checkIn(given) {
    try {
      const {body: seat} = await api(base, {method: "POST", body: {code: given}});
      show(true, element("strong", {}, say("checked_in", {name: ""}), element("bdi", {text: seat.name})),
        [text.statuses[seat.status], seat.category].filter(Boolean).join(" · "));
    } catch (error) {
      if (error.status === 409) refused(given);
      else if (error.status === 404 || error.status === 422) show(false, element("strong", {text: say("not_a_seat")}));
      else failed(error);
    }
    refresh();
  }

  // Who the code is, and since when they are in: the door's own words, not the server's.
  async function refused(given) {
    show(false, element("strong", {text: say("already")}));
    try {
      const {body: found} = await api(`${base}?q=${encodeURIComponent(given)}`);
      const [seat] = found.matches;
      if (seat) show(false, element("strong", {text: say("already")}), element("bdi", {text: seat.name}),
        moment(seat.checked_in_at, undefined, {timeStyle: "short"}));
    } catch (error) {
      failed(error);
    }
  }

  document.getElementById("by-code").addEventListener("submit", (submitted) => {
    submitted.preventDefault();
    const given = code.value.trim();
    if (!given) return;
    code.value = "";
    code.focus();               // ready for the next person in line
    checkIn(given);
  });

  document.getElementById("by-name").addEventListener("submit", async (submitted) => {
    submitted.preventDefault();
    const query = document.getElementById("name-search").value.trim();
    const table = document.getElementById("matches");
    try {
      const {body: found} = await api(`${base}?q=${encodeURIComponent(query)}`);
      room(found);
      table.querySelector("tbody").replaceChildren(...found.matches.map((seat) => {
        const button = element("button", {type: "button", class: "small",
          text: seat.checked_in_at ? say("already") : say("check_in"), disabled: Boolean(seat.checked_in_at)});
        button.addEventListener("click", async () => { await checkIn(seat.check_in_code); button.disabled = true; });
        return element("tr", {},
          element("td", {}, element("bdi", {text: seat.name})),
          element("td", {text: seat.category || ""}),
          element("td", {text: seat.checked_in_at ? `${say("already")} ${moment(seat.checked_in_at, undefined, {timeStyle: "short"})}` : text.statuses[seat.status]}),
          element("td", {}, button));
      }));
      if (!found.matches.length) table.querySelector("tbody").append(element("tr", {}, element("td", {colspan: 4, text: say("no_rows")})));
      table.hidden = false;
    } catch (error) {
      failed(error);
    }
  });

  async function refresh() {
    try { room((await api(base)).body); } catch (error) { failed(error); }
  }
  refresh();
  setInterval(() => { if (!document.hidden) refresh(); }, 5000);
})();
