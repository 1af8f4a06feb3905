// Campaign composer: builds the campaign definition from the form, previews it for a real user through
// POST /api/campaigns/preview (rendered message + guardrail checks), saves it (POST /api/campaigns) and sends
// it (POST /api/campaigns/ID/send). The API checks roles and CSRF; this script only sends the header.
import { makeFilters } from "./filters.js";

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
    const kakaoBox = el("div", { class: "kakao-fields", id: `${p}-kakao` });
    fs.append(legend, ...field(`${p}-key`, T.variant, keyIn), ...field(`${p}-weight`, T.weight, weight),
      ...field(`${p}-subject`, T.subject, subj), ...field(`${p}-text`, T.text, body), kakaoBox, remove);
    box.append(fs);
    kakao[i] = kakao[i] || {};
    renderKakao(i);
    return keyIn;
  }

  // ---- KakaoTalk fields per variant: AlimTalk (template code, variables, buttons), FriendTalk (image, buttons)
  const KAKAO = ["kakao", "kakao_brand"];
  const BUTTON_KEYS = { WL: ["linkMo", "linkPc"], AL: ["schemeAndroid", "schemeIos", "linkMo"] };
  const kakao = {};  // variant index -> channel -> {template_code, params: [[name, value]], buttons: [...], image_url}
  const chosenChannels = () => {
    const ch = $("c-channel").value;
    const fb = $("c-fallback").value;
    return fb && fb !== ch ? [ch, fb] : [ch];
  };
  const kstate = (i, ch) => {
    kakao[i] = kakao[i] || {};
    kakao[i][ch] = kakao[i][ch] || { template_code: "", params: [], buttons: [], image_url: "" };
    return kakao[i][ch];
  };
  const tagged = (node, chName, fieldName, index) => {
    node.dataset.ch = chName;
    node.dataset.field = fieldName;
    if (index !== undefined) node.dataset.index = String(index);
    return node;
  };
  function kInput(id, label, value, onInput, chName, fieldName, index, attrs = {}) {
    const input = tagged(el("input", { type: "text", id, ...attrs }), chName, fieldName, index);
    input.value = value || "";
    input.addEventListener("input", () => onInput(input.value));
    return el("div", {}, el("label", { for: id, text: label }), input);
  }
  function renderKakao(i) {
    const holder = $(`v${i}-kakao`);
    if (!holder) return;
    const p = `v${i}`;
    holder.replaceChildren();
    chosenChannels().filter((ch) => KAKAO.includes(ch)).forEach((ch) => {
      const st = kstate(i, ch);
      const q = `${p}-${ch}`;
      const fs = el("fieldset", { class: "kakao", "data-ch": ch },
        el("legend", { text: ch === "kakao" ? T.alimtalk : T.friendtalk }));
      if (ch === "kakao") {
        fs.append(el("div", { class: "kakao-row" }, kInput(`${q}-template`, T.template_code, st.template_code,
          (v) => { st.template_code = v; }, ch, "template_code", undefined, { maxlength: "64", "aria-describedby": `${q}-template-hint` })),
        el("p", { class: "muted", id: `${q}-template-hint`, text: T.template_code_hint }));
        fs.append(el("div", { class: "label-like" }, el("b", { text: T.params })), el("p", { class: "muted", text: T.params_hint }));
        st.params.forEach((pair, j) => {
          const rm = el("button", { type: "button", class: "link", id: `${q}-param${j}-remove`, text: T.kakao_remove,
            "aria-label": `${T.kakao_remove} ${T.param_name} ${j + 1}` });
          rm.addEventListener("click", () => { st.params.splice(j, 1); renderKakao(i); changedKakao(); $(`${q}-add-param`).focus(); });
          fs.append(el("div", { class: "kakao-row param", "data-index": String(j) },
            kInput(`${q}-param${j}-name`, T.param_name, pair[0], (v) => { pair[0] = v; }, ch, "param.name", j, { maxlength: "64" }),
            kInput(`${q}-param${j}-value`, T.param_value, pair[1], (v) => { pair[1] = v; }, ch, "param.value", j, { maxlength: "1000" }),
            rm));
        });
        const add = el("button", { type: "button", class: "secondary small", id: `${q}-add-param`, text: T.add_param });
        add.addEventListener("click", () => {
          st.params.push(["", ""]); renderKakao(i); $(`${q}-param${st.params.length - 1}-name`).focus();
        });
        fs.append(add);
      } else {
        fs.append(el("div", { class: "kakao-row" }, kInput(`${q}-image`, T.image_url, st.image_url,
          (v) => { st.image_url = v; }, ch, "image_url", undefined, { maxlength: "1000", "aria-describedby": `${q}-image-hint` })),
        el("p", { class: "muted", id: `${q}-image-hint`, text: T.image_hint }));
      }
      const btnHead = tagged(el("div", { class: "label-like" }, el("b", { text: T.buttons })), ch, "buttons");
      fs.append(btnHead);
      st.buttons.forEach((b, j) => {
        const row = el("div", { class: "kakao-row button", "data-index": String(j) });
        const typeSel = tagged(el("select", { id: `${q}-btn${j}-type` }), ch, "button.type", j);
        ["WL", "AL"].forEach((k) => typeSel.append(el("option", { value: k, text: T["button_" + k] })));
        typeSel.value = b.type || "WL";
        typeSel.addEventListener("change", () => { b.type = typeSel.value; renderKakao(i); $(`${q}-btn${j}-type`).focus(); });
        row.append(el("div", {}, el("label", { for: `${q}-btn${j}-type`, text: T.button_type }), typeSel),
          kInput(`${q}-btn${j}-name`, T.button_name, b.name, (v) => { b.name = v; }, ch, "button.name", j, { maxlength: "28" }));
        BUTTON_KEYS[b.type || "WL"].forEach((key) => row.append(kInput(`${q}-btn${j}-${key}`, T[key], b[key],
          (v) => { b[key] = v; }, ch, `button.${key}`, j, { maxlength: "1000", inputmode: "url" })));
        const rm = el("button", { type: "button", class: "link", id: `${q}-btn${j}-remove`, text: T.kakao_remove,
          "aria-label": `${T.kakao_remove} ${T.buttons} ${j + 1}` });
        rm.addEventListener("click", () => { st.buttons.splice(j, 1); renderKakao(i); changedKakao(); $(`${q}-add-button`).focus(); });
        row.append(rm);
        fs.append(row);
      });
      const addBtn = el("button", { type: "button", class: "secondary small", id: `${q}-add-button`, text: T.add_button });
      addBtn.addEventListener("click", () => {
        st.buttons.push({ type: "WL", name: "" }); renderKakao(i); $(`${q}-btn${st.buttons.length - 1}-name`).focus();
      });
      fs.append(addBtn);
      holder.append(fs);
    });
  }
  const renderAllKakao = () => box.querySelectorAll("fieldset.variant").forEach((fs) => renderKakao(Number(fs.dataset.variant)));
  function kakaoData(i, ch, stored) {  // the message's data: stored keys the form does not edit are kept
    if (!KAKAO.includes(ch)) return stored;
    const st = kstate(i, ch);
    const data = { ...stored };
    ["template_code", "template_parameters", "image_url", "buttons"].forEach((k) => { delete data[k]; });
    const buttons = st.buttons.map((b) => Object.fromEntries(Object.entries(b).filter(([, v]) => v !== "" && v !== undefined)));
    if (buttons.length) data.buttons = buttons;
    if (ch === "kakao") {
      data.template_code = st.template_code.trim();
      if (st.params.length) data.template_parameters = Object.fromEntries(st.params.map(([k, v]) => [k.trim(), v]));
    } else if (st.image_url.trim()) data.image_url = st.image_url.trim();
    return data;
  }
  function loadKakao(i, messages) {
    KAKAO.forEach((ch) => {
      const data = ((messages || {})[ch] || {}).data || {};
      const st = kstate(i, ch);
      st.template_code = data.template_code || "";
      st.params = Object.entries(data.template_parameters || {}).map(([k, v]) => [k, String(v)]);
      st.buttons = (data.buttons || []).map((b) => ({ ...b, type: b.type || "WL" }));
      st.image_url = data.image_url || "";
    });
    renderKakao(i);
  }

  // ---- inline checks (POST /ui/campaigns/check): each problem next to its field
  let checkTimer = null;
  let checkTicket = 0;
  function clearChecks() {
    form.querySelectorAll("p.field-err[data-check]").forEach((n) => n.remove());
    form.querySelectorAll('[aria-invalid="true"]').forEach((n) => n.removeAttribute("aria-invalid"));
    const top = $("c-channel-err");
    top.hidden = true;
    top.replaceChildren();
  }
  function errorTarget(e) {
    if (e.field === "channel") return null;
    const fs = [...box.querySelectorAll("fieldset.variant")].find((f) => $(`v${f.dataset.variant}-key`).value.trim() === e.variant);
    if (!fs) return null;
    if (e.field === "text") return $(`v${fs.dataset.variant}-text`);
    let sel = `[data-ch="${e.channel}"][data-field="${e.field}"]`;
    if (e.index !== null && e.index !== undefined) sel += `[data-index="${e.index}"]`;
    return fs.querySelector(sel);
  }
  function showChecks(errors) {
    clearChecks();
    errors.forEach((e, n) => {
      const target = errorTarget(e);
      if (!target) {
        const top = $("c-channel-err");
        top.hidden = false;
        top.append(el("span", { "data-check": e.code, class: e.severity === "warn" ? "warn" : "", text: `${e.message} ` }));
        if (e.severity !== "warn") $("c-channel").setAttribute("aria-invalid", "true");
        return;
      }
      const id = `${target.id || "err"}-err${n}`;
      const warn = e.severity === "warn";
      const note = el("p", { class: warn ? "field-err warn" : "field-err", id, role: warn ? "note" : "alert",
        "data-check": e.code, text: e.message });
      if (!warn) target.setAttribute("aria-invalid", "true");
      target.setAttribute("aria-describedby", `${target.getAttribute("aria-describedby") || ""} ${id}`.trim());
      (target.closest(".kakao-row > div") || target).after(note);
    });
    const blocking = errors.filter((e) => e.severity !== "warn").length;
    form.dataset.checks = String(blocking);
    const pending = $("status").querySelector("[data-fix-first]");
    if (!blocking && pending) pending.remove();  // the "fix these first" note goes once nothing is left
  }
  async function runChecks() {
    const mine = ++checkTicket;
    const def = definition();
    try {
      const data = await api("POST", "/ui/campaigns/check", def);
      if (mine === checkTicket) { showChecks(data.errors || []); form.dataset.checked = String(mine); }
      return data.errors || [];
    } catch (err) { return []; }
  }
  function changedKakao() { clearTimeout(checkTimer); checkTimer = setTimeout(runChecks, 350); }

  // ---- goal conditions: the segment builder's property filter rows (filters.js) on the goal event
  const FD = JSON.parse($("filter-data").textContent);
  const goal = { where: [] };
  let goalFocus = null;
  const ft = (key, vars = {}) => {
    let text = FD.i18n["b." + key] ?? key;
    for (const [k, v] of Object.entries(vars)) text = text.replace("{" + k + "}", v);
    return text;
  };
  const goalFilters = makeFilters({ events: FD.events, t: ft, focus: (id) => { goalFocus = id; },
    changed: (structural) => {
      if (structural) renderGoal();
      schedulePreviewLater();
      scheduleDryRunLater();
    } });
  function renderGoal() {
    const event = $("c-goal-event").value.trim();
    $("goal-filters").replaceChildren(goalFilters.filtersEl(goal, "goal", [], event));
    if (goalFocus && $(goalFocus)) $(goalFocus).focus();
    goalFocus = null;
  }
  // complete rows only: a row without a property is still being written
  const goalWhere = () => goal.where.filter((f) => f.path.length && f.path.every((x) => x !== ""));
  const schedulePreviewLater = () => schedulePreview();
  const scheduleDryRunLater = () => scheduleDryRun();

  const defaultsBox = $("policy-defaults");
  let basePolicy = defaultsBox ? JSON.parse(defaultsBox.textContent) : {};
  let storedMessages = {};  // variant key -> channel -> message of the campaign being edited
  const when = () => form.querySelector('input[name="when"]:checked').value;
  const csv = (v) => v.split(",").map((x) => x.trim()).filter(Boolean);

  function scheduleOf() {
    const w = when();
    if (w === "at") {
      const s = { type: "once" };
      if ($("c-at").value) s.at = $("c-at").value;
      if ($("c-local").checked) s.local_time = true;
      return s;
    }
    if (w === "cron") {
      const s = { type: "recurring", cron: $("c-cron").value.trim() };
      if ($("c-cron-tz").value.trim()) s.timezone = $("c-cron-tz").value.trim();
      return s;
    }
    if (w === "trigger") {
      const unit = $("c-delay-unit").value;
      const kind = $("c-trigger-kind").value;
      const s = { type: "triggered", event: kind === "segment_entered" ? "segment_entered" : $("c-trigger-event").value.trim(),
        delay: `${Math.max(0, Number($("c-delay").value) || 0)}${unit}`, recheck: $("c-recheck").checked,
        cancel_on: csv($("c-cancel-on").value) };
      if (kind === "segment_entered") s.segment = $("c-trigger-segment").value;
      if ($("c-delay-max").value !== "") s.delay_max = `${Number($("c-delay-max").value)}${unit}`;
      return s;
    }
    return { type: "once" };
  }

  const selected = (id) => [...$(id).selectedOptions].map((o) => o.value);

  function definition() {
    const channel = $("c-channel").value;
    const fallback = $("c-fallback").value;
    const channels = fallback && fallback !== channel ? [channel, fallback] : [channel];
    const variants = [...box.querySelectorAll("fieldset.variant")].map((fs) => {
      const p = `v${fs.dataset.variant}`;
      const key = $(`${p}-key`).value.trim();
      const messages = {};
      channels.forEach((ch) => {  // the same text on each channel; fields the form does not edit are kept
        const stored = (storedMessages[key] || {})[ch] || {};
        const data = kakaoData(Number(fs.dataset.variant), ch, stored.data || {});
        messages[ch] = { ...stored, subject: $(`${p}-subject`).value, text: $(`${p}-text`).value,
          ...(Object.keys(data).length ? { data } : {}) };
      });
      return { key, weight: Number($(`${p}-weight`).value) || 1, messages };
    });
    const schedule = scheduleOf();
    const cap = Number($("c-cap").value);
    const qh = { ...(basePolicy.quiet_hours || {}), enabled: $("c-quiet").checked };
    return {
      id: $("c-id").value.trim(), name: $("c-name").value.trim(),
      purpose: form.querySelector('input[name="purpose"]:checked').value,
      target: selected("c-target"), exclude: selected("c-exclude"), channels, variants,
      ...(cap > 0 ? { audience_cap: Math.floor(cap) } : {}),
      holdout: (Number($("c-holdout").value) || 0) / 100,
      goal: { event: $("c-goal-event").value.trim() || "order_completed", window: `${Number($("c-goal-window").value) || 3}d`,
        ...(goalWhere().length ? { where: goalWhere() } : {}) },
      schedule,
      sender: { name: $("c-sender-name").value.trim(), contact: $("c-sender-contact").value.trim(), opt_out: $("c-opt-out").value.trim() },
      policy: { ...basePolicy, quiet_hours: qh },
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
    const p = el("p", { class: "alert error", role: "alert", text: String(err.message || err) });
    if (err.message === T.fix_first) p.dataset.fixFirst = "1";
    target.replaceChildren(p);
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
      if (v.request) {  // what the KakaoTalk adapter would POST to NHN Cloud for this user
        if (v.channel === "kakao") sec.append(el("p", { class: "muted", text: T.not_sent_text }));
        sec.append(el("div", { class: "muted", text: T.request }),
          el("pre", { class: "sql vendor-request", "data-channel": v.channel, text: JSON.stringify(v.request, null, 2) }));
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
    out.dataset.ready = String(Number(out.dataset.ready || 0) + 1);
    if (data.errors) showChecks(data.errors);
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
      const data = await api("POST", `/ui/campaigns/preview?user_id=${encodeURIComponent(user)}`, def);
      if (mine === ticket) renderPreview(data);
    } catch (err) {
      if (mine === ticket) showError($("preview"), err);
    }
  }
  function schedulePreview() { clearTimeout(timer); timer = setTimeout(preview, 400); }

  async function save(status) {
    if (when() === "at" && !$("c-at").value) {
      $("c-at").focus();
      throw new Error(T.need_time);
    }
    if (when() === "cron" && !$("c-cron").value.trim()) {
      $("c-cron").focus();
      throw new Error(T.need_cron);
    }
    if (when() === "trigger" && $("c-trigger-kind").value === "event" && !$("c-trigger-event").value.trim()) {
      $("c-trigger-event").focus();
      throw new Error(T.need_trigger);
    }
    const problems = (await runChecks()).filter((e) => e.severity !== "warn");  // warnings do not block
    if (problems.length) {
      const first = form.querySelector('[aria-invalid="true"]');
      if (first) first.focus();
      throw new Error(T.fix_first);
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
    const w = when();
    $("c-at").disabled = w !== "at";
    document.querySelectorAll("#schedule-box .sched-part").forEach((d) => { d.hidden = d.dataset.when !== w; });
    const seg = $("c-trigger-kind").value === "segment_entered";
    $("c-trigger-event").closest("div").querySelectorAll('[for="c-trigger-event"], #c-trigger-event').forEach((n) => { n.hidden = seg; });
    document.querySelectorAll('[for="c-trigger-segment"], #c-trigger-segment').forEach((n) => { n.hidden = !seg; });
    const lab = $("c-at-label");
    lab.textContent = $("c-local").checked ? lab.dataset.local : lab.dataset.utc;
    if ($("send-now")) $("send-now").textContent = w === "now" ? T.send_now : T.schedule_send;
  };
  form.querySelectorAll('input[name="when"]').forEach((r) => r.addEventListener("change", syncWhen));
  $("c-trigger-kind").addEventListener("change", syncWhen);
  $("c-local").addEventListener("change", syncWhen);

  // dry run: who the next occurrence reaches and what each guardrail stops (POST /ui/campaigns/dry-run)
  let dryTimer = null;
  let dryTicket = 0;
  async function dryRun() {
    const def = definition();
    if (!def.id) def.id = "preview";
    const mine = ++dryTicket;
    const out = $("dryrun");
    out.setAttribute("aria-busy", "true");
    try {
      const resp = await fetch("/ui/campaigns/dry-run", { method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf }, body: JSON.stringify(def) });
      const html = await resp.text();
      if (mine === dryTicket) { out.innerHTML = html; out.dataset.ready = String(mine); }
    } catch (err) {
      if (mine === dryTicket) showError(out, err);
    } finally { if (mine === dryTicket) out.removeAttribute("aria-busy"); }
  }
  function scheduleDryRun() {  // automatic once there is something to count; the button always runs it
    clearTimeout(dryTimer);
    if (!selected("c-target").length) return;
    dryTimer = setTimeout(dryRun, 900);
  }
  $("dryrun-run").addEventListener("click", dryRun);
  const syncSender = () => {  // style too: the fieldset's CSS display would override [hidden]
    const off = !$("c-purpose-ad").checked;
    $("sender-box").hidden = off;
    $("sender-box").style.display = off ? "none" : "";
  };
  $("c-purpose-ad").addEventListener("change", syncSender);
  $("c-purpose-info").addEventListener("change", syncSender);
  $("c-channel").addEventListener("change", () => { renderAllKakao(); changedKakao(); });
  $("c-fallback").addEventListener("change", () => { renderAllKakao(); changedKakao(); });
  form.querySelectorAll('input[name="purpose"]').forEach((r) => r.addEventListener("change", changedKakao));
  box.addEventListener("input", (e) => { if (e.target.dataset.ch) changedKakao(); });
  box.addEventListener("change", (e) => { if (e.target.dataset.ch) changedKakao(); });
  form.addEventListener("input", schedulePreview);
  form.addEventListener("change", schedulePreview);
  form.addEventListener("change", scheduleDryRun);
  $("preview-run").addEventListener("click", preview);
  $("preview-user").addEventListener("change", schedulePreview);

  // a stored campaign to edit (or copy under a new id): /campaigns/new?from=ID
  function fill(c) {
    const channel = (c.channels || [])[0] || "email";
    $("c-id").value = c.id || "";
    $("c-name").value = c.name || "";
    (c.purpose === "informational" ? $("c-purpose-info") : $("c-purpose-ad")).checked = true;
    $("c-channel").value = channel;
    $("c-fallback").value = (c.channels || [])[1] || "";
    storedMessages = Object.fromEntries((c.variants || []).map((v) => [v.key, v.messages || {}]));
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
      loadKakao(seq - 1, v.messages);
    });
    $("c-holdout").value = String(Math.round((c.holdout || 0) * 1000) / 10);
    if (c.goal) {
      $("c-goal-event").value = c.goal.event;
      const where = c.goal.where || [];
      goal.where = Array.isArray(where) ? where
        : Object.entries(where).map(([k, v]) => ({ path: [k], op: "eq", value: { kind: "value", value: v } }));
      const days = /^P(\d+)D$/.exec(String(c.goal.window || ""));
      $("c-goal-window").value = days ? days[1] : "3";
    }
    const sc = c.schedule || { type: "once" };
    if (sc.type === "recurring") {
      $("c-when-cron").checked = true;
      $("c-cron").value = sc.cron || "";
      $("c-cron-tz").value = sc.timezone || "";
    } else if (sc.type === "triggered") {
      $("c-when-trigger").checked = true;
      $("c-trigger-kind").value = sc.event === "segment_entered" ? "segment_entered" : "event";
      if (sc.event !== "segment_entered") $("c-trigger-event").value = sc.event;
      if (sc.segment) $("c-trigger-segment").value = sc.segment;
      const secs = isoSeconds(sc.delay);
      const maxSecs = sc.delay_max ? isoSeconds(sc.delay_max) : null;
      const unit = [["d", 86400], ["h", 3600], ["m", 60]].find(([, n]) => secs % n === 0 && (maxSecs === null || maxSecs % n === 0)) || ["m", 60];
      $("c-delay-unit").value = unit[0];
      $("c-delay").value = String(secs / unit[1]);
      $("c-delay-max").value = maxSecs === null ? "" : String(maxSecs / unit[1]);
      $("c-cancel-on").value = (sc.cancel_on || []).join(", ");
      $("c-recheck").checked = sc.recheck !== false;
    } else if (sc.at) {
      $("c-when-at").checked = true;
      $("c-at").value = String(sc.at).slice(0, 16);
      $("c-local").checked = !!sc.local_time;
    } else $("c-when-now").checked = true;
    $("c-cap").value = c.audience_cap ? String(c.audience_cap) : "";
    if (c.policy) basePolicy = c.policy;
    $("c-quiet").checked = c.policy?.quiet_hours?.enabled !== false;
  }

  // pydantic writes timedeltas as ISO 8601 durations (PT3600S, P1D, P1DT2H ...)
  function isoSeconds(v) {
    if (typeof v === "number") return v;
    const m = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?)?$/.exec(String(v || ""));
    if (!m) return 0;
    return (Number(m[1] || 0) * 86400) + (Number(m[2] || 0) * 3600) + (Number(m[3] || 0) * 60) + Number(m[4] || 0);
  }

  const prefill = $("composer-prefill");
  if (prefill) fill(JSON.parse(prefill.textContent));
  else {
    $("c-quiet").checked = basePolicy.quiet_hours?.enabled !== false;
    addVariant("A", "{{ user.name | default: '고객' }}님을 위한 소식", "");
    addVariant("B", "", "");
  }
  syncWhen();
  syncSender();
  renderGoal();
  $("c-goal-event").addEventListener("change", () => { renderGoal(); });
  if (prefill) runChecks();
  $("composer").dataset.ready = "1";
})();
