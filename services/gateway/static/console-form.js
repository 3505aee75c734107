// The event form (templates/console/event_form.html.j2): creating an event
// (POST /api/v1/events) or changing one (PATCH, every field but the slug),
// and, while changing one, what saving would do (POST …/preview).
//
// The form holds every word; this script fills and reads it. The rows of
// sessions, categories and questions come from the <template>s, their ids
// numbered as the API's error fields name them ("sessions.0.starts_at").
// A session's times are typed as wall-clock times in the EVENT's time zone
// and sent as ISO 8601 with that zone's offset at that moment.
"use strict";
(() => {
  const {api, say, showFieldErrors, clearFieldErrors, notice, failed, data} = Console;
  const form = document.getElementById("event-form");
  if (!form) return;
  const byId = (id) => document.getElementById(id);
  const editing = form.dataset.mode === "edit";
  const eventSource = byId("event-data");
  let event = editing && eventSource ? JSON.parse(eventSource.textContent) : null;
  const zoneSelect = byId("timezone");
  const defaultSelect = byId("default-language");
  const box = byId("consequences");
  const save = byId("save");
  const CODES = [...form.querySelectorAll("input[name=languages]")].map((input) => input.value);
  const KINDS = {
    sessions: {template: "session-row", add: "add-session"},
    categories: {template: "category-row", add: "add-category"},
    questions: {template: "question-row", add: "add-question"},
  };
  const state = new WeakMap();      // a row: what it was loaded with
  let currentDefault = defaultSelect.value;

  // -- time zones ---------------------------------------------------------------
  const formatters = new Map();

  function partsIn(zone, ms) {
    let format = formatters.get(zone);
    if (!format) {
      format = new Intl.DateTimeFormat("en-US", {
        timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", second: "2-digit"});
      formatters.set(zone, format);
    }
    const parts = {};
    for (const {type, value} of format.formatToParts(new Date(ms))) parts[type] = value;
    return {year: Number(parts.year), month: Number(parts.month), day: Number(parts.day),
            hour: Number(parts.hour) % 24, minute: Number(parts.minute),
            second: Number(parts.second)};
  }

  function utc({year, month, day, hour, minute, second}) {
    const date = new Date(Date.UTC(2000, month - 1, day, hour, minute, second));
    date.setUTCFullYear(year);
    return date.getTime();
  }

  // The zone's offset from UTC (ms) at the instant ``ms``.
  function offsetAt(zone, ms) {
    const whole = Math.floor(ms / 1000) * 1000;
    return utc(partsIn(zone, whole)) - whole;
  }

  const pad = (value, width = 2) => String(value).padStart(width, "0");

  function wall(parts, seconds = true) {
    return `${pad(parts.year, 4)}-${pad(parts.month)}-${pad(parts.day)}T${pad(parts.hour)}:` +
      `${pad(parts.minute)}${seconds || parts.second ? `:${pad(parts.second)}` : ""}`;
  }

  // "2027-03-18T10:00" in ``zone`` → "2027-03-18T10:00:00+03:00" (null: not a time).
  // The offset is the zone's at that moment: each offset the zone has around
  // it (a day before, a day after, at it) is tried, and the instant it gives
  // kept if the zone's clock reads the typed time then. Near a DST switch: a
  // time that happens twice (clocks turned back) is the first; a time the
  // switch skips (02:30 when clocks jump from 02:00 to 03:00) the moment as
  // far after the switch (03:30), as calendars do.
  function localToIso(value, zone) {
    const match = /^(\d{4,})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?$/.exec(value || "");
    if (!match) return null;
    const [year, month, day, hour, minute, second] = match.slice(1).map((part) => Number(part || 0));
    const local = utc({year, month, day, hour, minute, second});
    const DAY = 86400000;
    const before = offsetAt(zone, local - DAY);
    const offsets = [...new Set([before, offsetAt(zone, local), offsetAt(zone, local + DAY)])];
    const fitting = offsets.map((offset) => local - offset)
      .filter((instant) => utc(partsIn(zone, instant)) === local).sort((a, b) => a - b);
    const instant = fitting.length ? fitting[0] : local - before;
    const minutes = Math.round(offsetAt(zone, instant) / 60000);
    const sign = minutes < 0 ? "-" : "+";
    const size = Math.abs(minutes);
    return `${wall(partsIn(zone, instant))}${sign}${pad(Math.floor(size / 60))}:${pad(size % 60)}`;
  }

  // An ISO instant → the datetime-local value of the same moment in ``zone``.
  function isoToLocal(iso, zone) {
    const ms = Date.parse(iso || "");
    return Number.isNaN(ms) ? "" : wall(partsIn(zone, ms), false);
  }

  function zoneOption() {
    return zoneSelect.selectedOptions[0] || null;
  }

  // The zone to send: the event's own id while its option is chosen (the
  // list may name it by a newer id of the same zone).
  function zoneValue() {
    const option = zoneOption();
    if (!option) return zoneSelect.value;
    if (event && (option.dataset.ids || "").split(" ").includes(event.timezone)) return event.timezone;
    return option.value;
  }

  function zoneName() {
    const option = zoneOption();
    return option ? (option.dataset.name || option.textContent.trim()) : "";
  }

  function chooseZone(zone) {
    const options = [...zoneSelect.options];
    const option = options.find((o) => o.value === zone) ||
      options.find((o) => (o.dataset.ids || "").split(" ").includes(zone));
    if (option) option.selected = true;
    return Boolean(option);
  }

  function showZone() {
    const name = zoneName();
    form.querySelectorAll(".zone-name").forEach((node) => { node.textContent = name; });
  }

  // -- languages ------------------------------------------------------------------
  // The chosen languages, the default first, then the others in the event's
  // order (a new one: in the order of the list).
  function languages() {
    const chosen = CODES.filter((code) => byId(`languages.${code}`).checked);
    const order = event ? event.languages : [];
    const rank = (code) => (order.includes(code) ? order.indexOf(code) : order.length + CODES.indexOf(code));
    const others = chosen.filter((code) => code !== defaultSelect.value).sort((a, b) => rank(a) - rank(b));
    return [defaultSelect.value, ...others];
  }

  function showLanguages(root = form) {
    const chosen = new Set(languages());
    root.querySelectorAll("[data-language]").forEach((node) => {
      node.hidden = !chosen.has(node.dataset.language);
    });
  }

  defaultSelect.addEventListener("change", () => {
    byId(`languages.${defaultSelect.value}`).checked = true;
    currentDefault = defaultSelect.value;
    // a category's title, a question's label: the text of the new default language
    for (const kind of ["categories", "questions"]) {
      for (const row of rows(kind)) {
        const input = row.querySelector(kind === "categories" ? "[data-key=title]" : "[data-key=label]");
        input.value = state.get(row).texts[currentDefault] || "";
      }
    }
    showLanguages();
  });

  for (const code of CODES) {
    byId(`languages.${code}`).addEventListener("change", (change) => {
      if (!change.target.checked && code === defaultSelect.value) {
        const other = CODES.find((c) => c !== code && byId(`languages.${c}`).checked);
        if (other) {
          defaultSelect.value = other;
          defaultSelect.dispatchEvent(new Event("change"));
        } else {
          change.target.checked = true;     // an event has at least one language
        }
      }
      showLanguages();
    });
  }

  // -- rows -------------------------------------------------------------------------
  function rows(kind) {
    return [...byId(kind).children];
  }

  const RENAMED = ["id", "for", "aria-describedby", "aria-labelledby"];

  function renumber(kind) {
    const pattern = new RegExp(`(^|\\s)${kind}\\.(?:\\d+|__i__)(?=[.\\s-]|$)`, "g");
    rows(kind).forEach((row, index) => {
      for (const node of [row, ...row.querySelectorAll("*")]) {
        for (const attribute of RENAMED) {
          const value = node.getAttribute(attribute);
          if (value) node.setAttribute(attribute, value.replace(pattern, `$1${kind}.${index}`));
        }
      }
      row.querySelector(".row-number").textContent = Console.number(index + 1);
    });
  }

  function field(row, key, language) {
    return row.querySelector(`[data-key="${key}"]${language ? `[data-language-of="${language}"]` : ""}`);
  }

  function addRow(kind, item = null) {
    const fragment = byId(KINDS[kind].template).content.cloneNode(true);
    const row = fragment.querySelector(".row");
    byId(kind).append(row);
    renumber(kind);
    const texts = {...((kind === "questions" ? item?.label : item?.title) || {})};
    state.set(row, {item, texts, times: {}, slugTouched: Boolean(item)});
    FILL[kind](row, item);
    showLanguages(row);
    showZone();
    row.querySelector(".remove").addEventListener("click", () => {
      row.remove();
      renumber(kind);
      byId(KINDS[kind].add).focus();
      changed();
    });
    const slug = field(row, "slug");
    slug.addEventListener("input", () => { state.get(row).slugTouched = true; });
    return row;
  }

  const FILL = {
    sessions(row, item) {
      if (!item) return;
      field(row, "slug").value = item.slug;
      for (const code of CODES) field(row, "title", code).value = item.title?.[code] || "";
      const zone = zoneSelect.value;
      for (const key of ["starts_at", "ends_at"]) {
        const local = isoToLocal(item[key], zone);
        field(row, key).value = local;
        state.get(row).times[key] = {iso: item[key], local, zone};
      }
      field(row, "capacity").value = item.capacity ?? "";
      const cancelled = field(row, "cancelled");
      if (cancelled) cancelled.checked = Boolean(item.cancelled);
    },
    categories(row, item) {
      const title = field(row, "title");
      title.addEventListener("input", () => { state.get(row).texts[currentDefault] = title.value; });
      if (!item) return;
      field(row, "slug").value = item.slug;
      field(row, "capacity").value = item.capacity ?? "";
      title.value = state.get(row).texts[currentDefault] || "";
    },
    questions(row, item) {
      const label = field(row, "label");
      const type = field(row, "type");
      label.addEventListener("input", () => { state.get(row).texts[currentDefault] = label.value; });
      const options = () => { row.querySelector(".options").hidden = type.value !== "choice"; };
      type.addEventListener("change", options);
      if (item) {
        field(row, "slug").value = item.slug;
        label.value = state.get(row).texts[currentDefault] || "";
        type.value = item.type || "text";
        field(row, "required").checked = Boolean(item.required);
        field(row, "options").value = (item.options || []).join("\n");
      }
      options();
    },
  };

  for (const kind of Object.keys(KINDS)) {
    byId(KINDS[kind].add).addEventListener("click", () => {
      const row = addRow(kind);
      field(row, "slug").focus();
      changed();
    });
  }

  // A short name for links from a title, while the organiser has not typed one.
  let slugTouched = false;
  if (!editing) byId("slug").addEventListener("input", () => { slugTouched = true; });

  function slugOf(text) {
    return text.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase()
      .replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 60).replace(/-+$/, "");
  }

  form.addEventListener("input", ({target}) => {
    const row = target.closest(".row");
    const own = row && state.get(row);
    if (own && !own.item && !own.slugTouched && (
      target.dataset.key === "title" && (!target.dataset.languageOf || target.dataset.languageOf === defaultSelect.value))) {
      const slug = slugOf(target.value);
      if (slug) field(row, "slug").value = slug;
    } else if (!editing && !row && target.id === `title.${defaultSelect.value}` && !slugTouched) {
      const slug = slugOf(target.value);
      if (slug) byId("slug").value = slug;
    }
  });

  // -- reading the form ---------------------------------------------------------------
  // The event as the API takes it, and the problems found before asking it
  // ([{field, message}] as a 422's errors).
  function build() {
    const problems = [];
    const chosen = languages();

    const texts = (read) => {
      const out = {};
      for (const code of chosen) {
        const value = read(code);
        if (value && value.trim()) out[code] = value;
      }
      return out;
    };
    const count = (input) => {
      if (input.validity.badInput) {
        problems.push({field: input.id, message: form.dataset.wholeNumber});
        return null;
      }
      if (input.value.trim() === "") return null;
      const value = Number(input.value);
      if (!Number.isInteger(value) || value < 0) {
        problems.push({field: input.id, message: form.dataset.wholeNumber});
        return null;
      }
      return value;
    };
    const text = (input) => (input.value.trim() ? input.value : null);
    const zone = zoneValue();

    const time = (row, key) => {
      const input = field(row, key);
      const before = state.get(row).times[key];
      if (before && before.local === input.value && before.zone === zoneSelect.value) return before.iso;
      const iso = localToIso(input.value, zoneSelect.value);
      if (!iso) problems.push({field: input.id, message: form.dataset.badTime});
      return iso;
    };

    const sessions = rows("sessions").map((row) => {
      const session = {
        slug: field(row, "slug").value.trim(),
        title: texts((code) => field(row, "title", code).value),
        starts_at: time(row, "starts_at"),
        ends_at: time(row, "ends_at"),
        capacity: count(field(row, "capacity")),
      };
      const cancelled = field(row, "cancelled");
      if (cancelled) session.cancelled = cancelled.checked;
      return session;
    });

    const categories = rows("categories").map((row) => {
      const title = texts((code) => state.get(row).texts[code]);
      return {slug: field(row, "slug").value.trim(), capacity: count(field(row, "capacity")),
              title: Object.keys(title).length ? title : null};
    });

    const questions = rows("questions").map((row) => {
      const type = field(row, "type").value;
      const options = field(row, "options").value.split("\n").map((line) => line.trim()).filter(Boolean);
      return {slug: field(row, "slug").value.trim(),
              label: texts((code) => state.get(row).texts[code]),
              type, required: field(row, "required").checked,
              options: type === "choice" ? options : null};
    });

    const label = texts((code) => byId(`timezone_label.${code}`).value);
    const body = {
      title: texts((code) => byId(`title.${code}`).value),
      timezone: zone,
      timezone_label: Object.keys(label).length ? label : null,
      languages: chosen,
      format: byId("format").value,
      venue: text(byId("venue")),
      join_url: byId("join_url").value.trim() || null,
      capacity: count(byId("capacity")),
      waitlist: byId("waitlist").checked,
      confirmation_window: confirmation(problems),
      categories, sessions, questions,
      reminders: [...form.querySelectorAll("input[name=reminders]:checked")].map((box) => box.value),
    };
    if (!editing) body.slug = byId("slug").value.trim();
    return {body, problems};
  }

  // ISO 8601 durations such as PT48H, P2D or P1DT12H in hours (null: another shape).
  function hoursOf(duration) {
    const match = /^P(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$/.exec(duration || "");
    if (!match) return null;
    const [weeks, days, hours, minutes, seconds] = match.slice(1).map((part) => Number(part || 0));
    return weeks * 168 + days * 24 + hours + minutes / 60 + seconds / 3600;
  }

  const hoursInput = byId("confirmation-hours");
  if (event && event.confirmation_window) {
    const hours = hoursOf(event.confirmation_window);
    if (hours !== null) hoursInput.value = String(Math.round(hours * 100) / 100);
  }

  function confirmation(problems) {
    const value = hoursInput.value.trim();
    if (hoursInput.validity.badInput) {
      problems.push({field: hoursInput.id, message: form.dataset.wholeNumber});
      return null;
    }
    if (!value) return null;
    const hours = Number(value);
    if (!(hours > 0)) {
      problems.push({field: hoursInput.id, message: form.dataset.wholeNumber});
      return null;
    }
    // unchanged: the event's own duration (PT90M stays PT90M)
    if (event && event.confirmation_window &&
        Math.abs(hoursOf(event.confirmation_window) - hours) < 0.005) return event.confirmation_window;
    return Number.isInteger(hours) ? `PT${hours}H` : `PT${Math.round(hours * 60)}M`;
  }

  // -- errors ---------------------------------------------------------------------------
  const ALIASES = {confirmation_window: "confirmation-hours"};

  // An error's field as the id of what shows it: the field itself, else its
  // nearest enclosing part that has an error line (a session's row for
  // "sessions.0", the list for "sessions"), else the form's own line.
  function place(fieldName) {
    if (ALIASES[fieldName]) return ALIASES[fieldName];
    const parts = String(fieldName || "").split(".");
    while (parts.length) {
      const id = parts.join(".");
      const node = byId(id);
      if (id !== "form" && node && form.contains(node) && byId(`${id}-error`)) return id;
      parts.pop();
    }
    return "form";
  }

  function showProblems(errors) {
    const placed = new Map();
    for (const {field: name, message} of errors) {
      const id = place(name);
      placed.set(id, placed.has(id) ? `${placed.get(id)} ${message}` : message);
    }
    const shown = showFieldErrors(form, {errors: [...placed].map(([id, message]) => ({field: id, message}))});
    notice(say("check"), true);
    if (!shown && placed.has("form")) byId("form-error").focus();
  }

  // -- saving ----------------------------------------------------------------------------
  form.addEventListener("submit", async (submit) => {
    submit.preventDefault();
    clearFieldErrors(form);
    notice("");
    const {body, problems} = build();
    if (problems.length) {
      showProblems(problems);
      return;
    }
    save.disabled = true;
    form.setAttribute("aria-busy", "true");
    try {
      if (editing) {
        const {body: saved} = await api(`/api/v1/events/${encodeURIComponent(event.slug)}`,
                                        {method: "PATCH", body});
        rebase(body, saved);
        if (box) box.replaceChildren();
        notice(say("saved"));
      } else {
        await api("/api/v1/events", {method: "POST", body});
        notice(say("created"));
        location.assign(`/admin/events/${encodeURIComponent(body.slug)}`);
      }
    } catch (error) {
      if (Array.isArray(error.problem?.errors) && error.problem.errors.length) {
        showProblems(error.problem.errors);
      } else if (error.status === 409 && !editing) {
        showFieldErrors(form, {errors: [{field: "slug", message: error.message}]});
        notice(say("check"), true);
      } else {
        failed(error);
      }
    } finally {
      save.disabled = false;
      form.removeAttribute("aria-busy");
    }
  });

  // After a save: what was sent is what the event now is.
  function rebase(body, saved) {
    event = {...event, ...body, ...(saved && typeof saved === "object" ? saved : {})};
    rows("sessions").forEach((row, index) => {
      for (const key of ["starts_at", "ends_at"]) {
        state.get(row).times[key] = {iso: body.sessions[index][key], local: field(row, key).value,
                                     zone: zoneSelect.value};
      }
    });
  }

  // -- what saving would do (changing an event only) ----------------------------------------
  const WATCHED = /^(capacity|waitlist|timezone|(sessions|categories)\.\d+\.capacity|sessions\.\d+\.(starts_at|ends_at|cancelled))$/;
  let timer = 0;
  let asked = 0;

  function changed() {
    if (!box) return;
    clearTimeout(timer);
    timer = setTimeout(preview, 400);
  }

  function sessionTitle(slug) {
    const row = rows("sessions").find((r) => field(r, "slug").value.trim() === slug);
    const pick = (title) => title && (title[data.lang] || title[defaultSelect.value] || Object.values(title)[0]);
    if (row) {
      const shown = [data.lang, defaultSelect.value].map((code) => field(row, "title", code)?.value.trim()).find(Boolean);
      if (shown) return shown;
    }
    return pick(event.sessions.find((s) => s.slug === slug)?.title) || slug;
  }

  async function preview() {
    const ask = ++asked;
    const {body, problems} = build();
    if (problems.length) {
      box.replaceChildren();
      return;
    }
    try {
      const {body: answer} = await api(`/api/v1/events/${encodeURIComponent(event.slug)}/preview`,
                                       {method: "POST", body});
      if (ask !== asked) return;
      const lines = [];
      if (answer.promoted > 0) lines.push(say("promotes", {count: Console.number(answer.promoted)}));
      for (const [slug, count] of Object.entries(answer.told || {})) {
        if (count > 0) lines.push(say("tells", {count: Console.number(count), session: sessionTitle(slug)}));
      }
      if (!lines.length) lines.push(say("no_consequence"));
      box.replaceChildren(...lines.map((line) => Console.element("p", {text: line})));
    } catch (error) {
      if (ask === asked) box.replaceChildren();
    }
  }

  form.addEventListener("input", ({target}) => { if (WATCHED.test(target.id)) changed(); });
  form.addEventListener("change", ({target}) => { if (WATCHED.test(target.id)) changed(); });

  // -- the start ---------------------------------------------------------------------------
  if (event) {
    const option = zoneOption();
    if (!option || !(option.value === event.timezone ||
                     (option.dataset.ids || "").split(" ").includes(event.timezone))) {
      if (!chooseZone(event.timezone)) {
        zoneSelect.append(Console.element("option", {value: event.timezone, text: event.timezone, selected: true}));
      }
    }
  } else {
    // a new event: where the organiser is, most likely
    const here = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (here) chooseZone(here);
  }
  zoneSelect.addEventListener("change", showZone);
  showZone();

  if (event) {
    for (const session of event.sessions || []) addRow("sessions", session);
    for (const category of event.categories || []) addRow("categories", category);
    for (const question of event.questions || []) addRow("questions", question);
  } else {
    addRow("sessions");
  }
  showLanguages();
})();
