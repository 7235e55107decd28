// The agents' console: the live queue, one open conversation, and the agent's actions.
// Plain JS served by the gateway; every text from a customer is set with textContent.
(() => {
  "use strict";
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const me = document.querySelector('meta[name="agent"]').content;
  const $ = (id) => document.getElementById(id);
  let openConv = null;
  let queueItems = [];
  let fetchedAt = Date.now();

  function waited(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    if (s < 60) return `${s}s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
    return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m`;
  }

  async function api(path, body) {
    const init = body === undefined ? {} : {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body),
    };
    const resp = await fetch(path, { credentials: "same-origin", ...init });
    if (resp.status === 401) { window.location.href = "/agent/login"; return null; }
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new Error(data.error || `HTTP ${resp.status}`);
    return data;
  }

  function drawQueue() {
    const list = $("queue");
    list.replaceChildren();
    const age = (Date.now() - fetchedAt) / 1000;
    for (const item of queueItems) {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button";
      b.dataset.conv = item.conv;
      b.setAttribute("aria-current", String(item.conv === openConv));
      const wait = document.createElement("span");
      wait.className = "wait";
      wait.textContent = waited(item.waiting_s + age);
      const who = document.createElement("strong");
      who.textContent = item.customer;
      const where = document.createTextNode(` on ${item.channel}`);
      const reason = document.createElement("span");
      reason.className = "taken";
      reason.textContent = item.reason;
      const taken = document.createElement("span");
      taken.className = "taken";
      taken.textContent = item.taken_by ? `taken by ${item.taken_by}` : "not taken";
      b.append(wait, who, where, reason, taken);
      b.addEventListener("click", () => openConversation(item.conv));
      li.append(b);
      list.append(li);
    }
    $("queue-empty").hidden = queueItems.length > 0;
  }

  async function refreshQueue() {
    const data = await api("/agent/api/queue");
    if (!data) return;
    queueItems = data.queue;
    fetchedAt = Date.now();
    drawQueue();
  }

  async function refreshConversation() {
    if (!openConv) return;
    let data;
    try {
      data = await api(`/agent/api/conversation?conv=${encodeURIComponent(openConv)}`);
    } catch (err) {
      $("conv-error").textContent = err.message;
      return;
    }
    if (!data) return;
    $("conversation").hidden = false;
    $("conv-title").textContent = `${data.customer} on ${data.channel}`;
    const who = data.taken_by ? `taken by ${data.taken_by}` : "not taken yet";
    const state = data.state === "with_agent" ? who : "back with the bot";
    $("conv-meta").textContent = `${data.conv} · ${state}`;
    $("conv-summary").textContent = data.summary || "-";
    const ol = $("transcript");
    ol.replaceChildren();
    for (const line of data.transcript) {
      const li = document.createElement("li");
      li.className = line.role;
      const role = document.createElement("span");
      role.className = "role";
      role.textContent = { user: "Customer", bot: "Bot", agent: "Agent", system: "omnigate" }[line.role] || line.role;
      li.append(role, document.createTextNode(line.text));
      ol.append(li);
    }
    ol.scrollTop = ol.scrollHeight;
    const live = data.state === "with_agent";
    const mine = data.taken_by === me;
    for (const id of ["give-back", "close", "settle-intent"]) $(id).disabled = !live;
    $("take").hidden = mine || !live;
    $("reply").disabled = !live;
  }

  async function openConversation(conv) {
    openConv = conv;
    $("conv-error").textContent = "";
    drawQueue();
    await refreshConversation();
    $("reply").focus();
  }

  async function act(path, extra = {}) {
    $("conv-error").textContent = "";
    try {
      await api(path, { conv: openConv, ...extra });
      return true;
    } catch (err) {
      $("conv-error").textContent = err.message;
      return false;
    } finally {
      await Promise.all([refreshQueue(), refreshConversation()]);
    }
  }

  $("reply-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = $("reply").value.trim();
    if (!text || !openConv) return;
    if (await act("/agent/api/reply", { text })) $("reply").value = "";
  });
  $("reply").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); $("reply-form").requestSubmit(); }
  });
  $("take").addEventListener("click", () => act("/agent/api/take"));
  $("give-back").addEventListener("click", () => act("/agent/api/return"));
  $("close").addEventListener("click", async () => {
    if (await act("/agent/api/close", { intent: $("settle-intent").value })) $("settle-intent").value = "";
  });

  async function loadIntents() {
    const data = await api("/agent/api/intents");
    if (!data) return;
    for (const intent of data.intents) {
      const option = document.createElement("option");
      option.value = intent.name;
      option.textContent = intent.title;
      $("settle-intent").append(option);
    }
  }

  function listen() {
    const source = new EventSource("/agent/events");
    source.addEventListener("change", () => { refreshQueue(); refreshConversation(); });
    source.onerror = () => { source.close(); setTimeout(listen, 3000); };
  }

  setInterval(drawQueue, 1000);  // the wait times tick between updates
  refreshQueue();
  loadIntents();
  listen();
})();
