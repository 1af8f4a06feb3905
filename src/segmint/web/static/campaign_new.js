// Campaign composer: builds the campaign definition from the form, previews it for a real user through
// POST /api/campaigns/preview (rendered message + guardrail checks), saves it (POST /api/campaigns) and sends
// it (POST /api/campaigns/ID/send). The API checks roles and CSRF; this script only sends the header.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const T = JSON.parse($("composer-text").textContent);
  const csrf = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRF-Token"] || "";
  const form = $("campaign-form");
  const box = $("variants");
  let seq = 0;

  const el = (tag, attrs = {}, ...kids) => {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "text") n.textContent = v;
      else n.setAttribute(k, v);
    }
    kids.forEach((k) => n.append(k));
    return n;
  };
  const field = (id, label, input) => [el("label", { for: id, text: label }), input];

  function addVariant(key, subject, text) {
    const i = seq++;
    const p = `v${i}`;
    const fs = el("fieldset", { class: "variant", "data-variant": String(i) });
    const legend = el("legend", { text: `${T.variant} ${key}` });
    const keyIn = el("input", { type: "text", id: `${p}-key`, value: key, maxlength: "32", pattern: "[A-Za-z0-9_-]{1,32}" });
    keyIn.addEventListener("input", () => { legend.textContent = `${T.variant} ${keyIn.value}`; });
    const weight = el("input", { type: "number", id: `${p}-weight`, value: "1", min: "0.01", step: "any" });
    const subj = el("input", { type: "text", id: `${p}-subject`, value: subject, maxlength: "500" });
    const body = el("textarea", { id: `${p}-text`, rows: "3", maxlength: "5000" });
    body.value = text;
    const remove = el("button", { type: "button", class: "link", text: T.remove, "aria-label": `${T.remove} ${key}` });
    remove.addEventListener("click", () => {
      if (box.children.length > 1) { fs.remove(); schedulePreview(); box.querySelector("input")?.focus(); }
    });
    fs.append(legend, ...field(`${p}-key`, T.variant, keyIn), ...field(`${p}-weight`, T.weight, weight),
      ...field(`${p}-subject`, T.subject, subj), ...field(`${p}-text`, T.text, body), remove);
    box.append(fs);
    return keyIn;
  }

  const selected = (id) => [...$(id).selectedOptions].map((o) => o.value);

  function definition() {
    const channel = $("c-channel").value;
    const variants = [...box.querySelectorAll("fieldset.variant")].map((fs) => {
      const p = `v${fs.dataset.variant}`;
      return {
        key: $(`${p}-key`).value.trim(), weight: Number($(`${p}-weight`).value) || 1,
        messages: { [channel]: { subject: $(`${p}-subject`).value, text: $(`${p}-text`).value } },
      };
    });
    const schedule = { type: "once" };
    if ($("c-when-at").checked && $("c-at").value) schedule.at = $("c-at").value;
    return {
      id: $("c-id").value.trim(), name: $("c-name").value.trim(),
      purpose: form.querySelector('input[name="purpose"]:checked').value,
      target: selected("c-target"), exclude: selected("c-exclude"), channels: [channel], variants,
      holdout: (Number($("c-holdout").value) || 0) / 100,
      goal: { event: $("c-goal-event").value.trim() || "order_completed", window: `${Number($("c-goal-window").value) || 3}d` },
      schedule,
      sender: { name: $("c-sender-name").value.trim(), contact: $("c-sender-contact").value.trim(), opt_out: $("c-opt-out").value.trim() },
      policy: { quiet_hours: { enabled: $("c-quiet").checked } },
    };
  }

  async function api(method, url, body) {
    const resp = await fetch(url, {
      method, credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, Accept: "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await resp.json(); } catch (e) { data = null; }
    if (!resp.ok) {
      let msg = resp.statusText;
      if (data && typeof data === "object") {
        const d = data.detail;
        msg = data.message || (Array.isArray(d) ? d.map((x) => `${(x.loc || []).slice(1).join(".")}: ${x.msg}`).join("; ") : d) || msg;
        if (data.where) msg = `${data.where}: ${msg}`;
      }
      throw new Error(msg);
    }
    return data;
  }

  function showError(target, err) {
    target.replaceChildren(el("p", { class: "alert error", role: "alert", text: String(err.message || err) }));
  }

  function renderPreview(data) {
    const out = $("preview");
    const group = data.group === "control" ? T.control : data.group;
    const head = el("p", { id: "preview-summary" },
      `${T.group}: `, el("b", { text: group }), ` · ${T.in_target}: `, el("b", { text: data.in_target ? T.yes : T.no }));
    const items = data.variants.map((v) => {
      const sec = el("section", { class: "event preview-variant", "data-variant": v.variant, "data-outcome": v.outcome });
      sec.append(el("h3", { text: `${T.variant} ${v.variant}${v.variant === data.group ? " ★" : ""}` }));
      sec.append(el("p", {}, `${T.outcome}: `, el("b", { text: v.outcome }),
        v.reason ? ` — ${v.reason}${v.reason_text ? ` (${v.reason_text})` : ""}` : "", v.channel ? ` · ${T.channel}: ${v.channel}` : ""));
      if (v.message) {
        if (v.message.subject) sec.append(el("p", { class: "preview-subject" }, el("b", { text: v.message.subject })));
        sec.append(el("pre", { class: "sql preview-text", text: v.message.text || "" }));
      }
      const checks = el("ul", { class: "checks", "aria-label": T.checks });
      (v.checks || []).forEach((c) => {
        const extra = c.reason ? ` — ${c.reason}` : c.count !== undefined ? ` (${c.count})` : "";
        checks.append(el("li", { "data-ok": c.ok ? "1" : "0", text: `${c.ok ? "✓" : "✗"} ${c.check}: ${c.ok ? T.ok : T.fail}${extra}` }));
      });
      sec.append(el("div", { class: "muted", text: T.checks }), checks);
      return sec;
    });
    out.replaceChildren(head, ...items);
    out.dataset.user = data.user_id;
  }

  let timer = null;
  let ticket = 0;
  async function preview() {
    const user = $("preview-user").value.trim();
    const def = definition();
    if (!user || !def.target.length) return;
    if (!def.id) def.id = "preview";
    const mine = ++ticket;
    try {
      const data = await api("POST", `/api/campaigns/preview?user_id=${encodeURIComponent(user)}`, def);
      if (mine === ticket) renderPreview(data);
    } catch (err) {
      if (mine === ticket) showError($("preview"), err);
    }
  }
  function schedulePreview() { clearTimeout(timer); timer = setTimeout(preview, 400); }

  async function save(status) {
    if ($("c-when-at").checked && !$("c-at").value) {
      $("c-at").focus();
      throw new Error(T.need_time);
    }
    const def = definition();
    const url = status ? `/api/campaigns?status=${status}` : "/api/campaigns";
    return api("POST", url, def);
  }

  const statusBox = $("status");
  $("save")?.addEventListener("click", async () => {
    try {
      const out = await save("draft");
      const link = el("a", { href: `/campaigns/${encodeURIComponent(out.id)}/report`, text: T.report });
      statusBox.replaceChildren(el("p", { class: "alert ok", id: "saved-note" }, `${T.saved}: ${out.id} v${out.version} · `, link));
    } catch (err) { showError(statusBox, err); }
  });
  $("send-now")?.addEventListener("click", async () => {
    const btn = $("send-now");
    btn.disabled = true;
    try {
      const out = await save(null);
      await api("POST", `/api/campaigns/${encodeURIComponent(out.id)}/send`);
      statusBox.replaceChildren(el("p", { class: "alert ok", id: "sent-note", text: T.sending }));
      window.location.assign(`/campaigns/${encodeURIComponent(out.id)}/report`);
    } catch (err) { showError(statusBox, err); btn.disabled = false; }
  });

  $("add-variant").addEventListener("click", () => {
    const key = String.fromCharCode(65 + Math.min(box.children.length, 25));
    addVariant(key, "", "").focus();
    schedulePreview();
  });
  const syncWhen = () => {
    const at = $("c-when-at").checked;
    $("c-at").disabled = !at;
    if ($("send-now")) $("send-now").textContent = at ? T.schedule_send : T.send_now;
  };
  $("c-when-now").addEventListener("change", syncWhen);
  $("c-when-at").addEventListener("change", syncWhen);
  const syncSender = () => {  // style too: the fieldset's CSS display would override [hidden]
    const off = !$("c-purpose-ad").checked;
    $("sender-box").hidden = off;
    $("sender-box").style.display = off ? "none" : "";
  };
  $("c-purpose-ad").addEventListener("change", syncSender);
  $("c-purpose-info").addEventListener("change", syncSender);
  form.addEventListener("input", schedulePreview);
  form.addEventListener("change", schedulePreview);
  $("preview-run").addEventListener("click", preview);
  $("preview-user").addEventListener("change", schedulePreview);

  // a stored campaign to edit (or copy under a new id): /campaigns/new?from=ID
  function fill(c) {
    const channel = (c.channels || [])[0] || "email";
    $("c-id").value = c.id || "";
    $("c-name").value = c.name || "";
    (c.purpose === "informational" ? $("c-purpose-info") : $("c-purpose-ad")).checked = true;
    $("c-channel").value = channel;
    const pick = (id, names) => [...$(id).options].forEach((o) => { o.selected = (names || []).includes(o.value); });
    pick("c-target", c.target);
    pick("c-exclude", c.exclude);
    $("c-sender-name").value = c.sender?.name || "";
    $("c-sender-contact").value = c.sender?.contact || "";
    $("c-opt-out").value = c.sender?.opt_out || "";
    box.replaceChildren();
    (c.variants || []).forEach((v) => {
      const m = (v.messages || {})[channel] || {};
      addVariant(v.key, m.subject || "", m.text || "");
      $(`v${seq - 1}-weight`).value = String(v.weight ?? 1);
    });
    $("c-holdout").value = String(Math.round((c.holdout || 0) * 1000) / 10);
    if (c.goal) {
      $("c-goal-event").value = c.goal.event;
      const days = /^P(\d+)D$/.exec(String(c.goal.window || ""));
      $("c-goal-window").value = days ? days[1] : "3";
    }
    const at = c.schedule && c.schedule.type === "once" && c.schedule.at;
    (at ? $("c-when-at") : $("c-when-now")).checked = true;
    if (at) $("c-at").value = String(at).slice(0, 16);
    $("c-quiet").checked = c.policy?.quiet_hours?.enabled !== false;
  }

  const prefill = $("composer-prefill");
  if (prefill) fill(JSON.parse(prefill.textContent));
  else {
    addVariant("A", "{{ user.name | default: '고객' }}님을 위한 소식", "");
    addVariant("B", "", "");
  }
  syncWhen();
  syncSender();
  $("composer").dataset.ready = "1";
})();
