/*
 * omnigate web chat widget. One dependency-free file, no build step.
 *
 *   <script src="https://GATEWAY/web/widget.js" data-title="Help" data-color="#2f6f4e"
 *           data-position="right" data-greeting="Hi! How can we help?" async></script>
 *
 * data-title     header and button label            (default "Chat with us")
 * data-color     accent colour, any CSS colour      (default #2f6f4e)
 * data-position  "right" or "left"                  (default right)
 * data-greeting  first message shown to a visitor   (optional; shown locally, never sent)
 * data-open      "true" opens the chat on load      (optional)
 *
 * The gateway is found from this script's own src. The visitor token it issues is kept in
 * localStorage under a key per gateway origin, so a reload continues the conversation: on every
 * connect the widget sends {"type":"resume","after":<last seq rendered>} and the gateway replays
 * what the page has not shown yet. Reconnects back off exponentially (0.5 s .. 30 s, jittered).
 *
 * Security: everything from the network is rendered by building DOM nodes and setting
 * textContent; there is no innerHTML anywhere in this file. Links and images accept https: or
 * relative URLs only. The UI lives in a shadow root, isolated from the host page's CSS.
 *
 * Streaming: while the bot's reply is generated, {"type":"delta","reply_id","text"} frames
 * append checked text to a preview bubble (class "streaming"); the reply frame with the same
 * reply_id replaces it with the whole checked reply. A reply frame also drops any preview left
 * over (its deltas were lost, or its turn ended otherwise); deltas of a reply already shown
 * are ignored.
 *
 * window.omnigate = {open(), close(), toggle()} lets the page open the chat from its own links.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script) {
    var all = document.querySelectorAll('script[src*="/web/widget.js"]');
    script = all[all.length - 1];
  }
  if (!script || window.omnigate) return;

  var SRC = new URL(script.getAttribute("src"), document.baseURI);
  var BASE = SRC.href.replace(/\/web\/widget\.js(?:[?#].*)?$/, "");
  var WS_BASE = BASE.replace(/^http/, "ws");
  var STORE_KEY = "omnigate:" + SRC.origin;
  var MAX_TEXT = 4000;
  var KEEP_MINE = 100; // visitor messages kept for redrawing the conversation after a reload
  var RESEND_WINDOW_MS = 5 * 60 * 1000; // re-sent on reconnect; the gateway dedupes on the id
  var TYPING_MS = 6000;

  function data(name, fallback) {
    var v = script.getAttribute("data-" + name);
    return v === null || v === "" ? fallback : v;
  }
  var cfg = {
    title: data("title", "Chat with us"),
    color: data("color", "#2f6f4e"),
    position: data("position", "right") === "left" ? "left" : "right",
    greeting: data("greeting", ""),
    open: data("open", "false") === "true",
  };

  // --- storage (localStorage may be unavailable: private modes, sandboxed frames) ---------

  var memoryStore = {};
  function load() {
    var raw = null;
    try {
      raw = window.localStorage.getItem(STORE_KEY);
    } catch (e) {
      raw = memoryStore[STORE_KEY] || null;
    }
    try {
      var s = raw ? JSON.parse(raw) : null;
      if (s && typeof s === "object") return s;
    } catch (e) {
      /* a corrupt entry starts over */
    }
    return {};
  }
  function save() {
    var raw = JSON.stringify({ token: state.token, session_id: state.sessionId, mine: state.mine });
    try {
      window.localStorage.setItem(STORE_KEY, raw);
    } catch (e) {
      memoryStore[STORE_KEY] = raw;
    }
  }

  var stored = load();
  var state = {
    token: typeof stored.token === "string" ? stored.token : null,
    sessionId: typeof stored.session_id === "string" ? stored.session_id : null,
    mine: Array.isArray(stored.mine) ? stored.mine.slice(-KEEP_MINE) : [],
    lastSeq: 0, // the highest reply seq rendered on this page
    ws: null,
    online: false,
    connecting: false,
    attempts: 0,
    timer: null,
    outbox: [], // frames waiting for a socket
    unread: 0,
  };

  // --- DOM helpers ---------------------------------------------------------------------------

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      for (var k in attrs) {
        if (!Object.prototype.hasOwnProperty.call(attrs, k)) continue;
        if (k === "text") node.textContent = attrs[k];
        else if (k === "className") node.className = attrs[k];
        else node.setAttribute(k, attrs[k]);
      }
    }
    (children || []).forEach(function (c) {
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  function icon(pathData) {
    var NS = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var path = document.createElementNS(NS, "path");
    path.setAttribute("d", pathData);
    svg.appendChild(path);
    return svg;
  }

  /** An https: or relative URL, or null. No scheme but https, no protocol-relative "//",
   * no backslashes or control characters (which browsers may read as "//"). */
  function safeUrl(u) {
    if (typeof u !== "string") return null;
    u = u.trim();
    if (!u || /[\\\u0000-\u001f\s]/.test(u)) return null;
    if (/^https:\/\/[^/]/i.test(u)) return u;
    if (/^\/\//.test(u)) return null;
    if (/^[^:/?#]*:/.test(u)) return null; // some other scheme: javascript:, data:, http: ...
    return u;
  }

  // --- the safe markdown subset: **bold**, _italic_, `code`, [text](url), line breaks ------

  var INLINE = /\*\*([\s\S]+?)\*\*|_([^_\n]+?)_|`([^`\n]+)`|\[([^\]\n]+)\]\(([^)\s]+)\)/g;

  function renderInline(text, parent, depth) {
    var re = new RegExp(INLINE.source, "g");
    var at = 0;
    var m;
    while ((m = re.exec(text)) !== null) {
      var start = m.index;
      var end = start + m[0].length;
      if (m[2] !== undefined) {
        // _italic_ only at word edges: snake_case_names stay as they are.
        var before = start > 0 ? text.charAt(start - 1) : "";
        var after = end < text.length ? text.charAt(end) : "";
        if (/[A-Za-z0-9_]/.test(before) || /[A-Za-z0-9_]/.test(after)) {
          re.lastIndex = start + 1;
          continue;
        }
      }
      if (start > at) parent.appendChild(document.createTextNode(text.slice(at, start)));
      if (m[1] !== undefined) {
        var b = el("strong");
        if (depth < 3) renderInline(m[1], b, depth + 1);
        else b.textContent = m[1];
        parent.appendChild(b);
      } else if (m[2] !== undefined) {
        var i = el("em");
        if (depth < 3) renderInline(m[2], i, depth + 1);
        else i.textContent = m[2];
        parent.appendChild(i);
      } else if (m[3] !== undefined) {
        parent.appendChild(el("code", { text: m[3] }));
      } else {
        var href = safeUrl(m[5]);
        if (href) {
          var a = el("a", { target: "_blank", rel: "noopener noreferrer nofollow" });
          a.href = href;
          a.textContent = m[4];
          parent.appendChild(a);
        } else {
          parent.appendChild(document.createTextNode(m[0]));
        }
      }
      at = end;
    }
    if (at < text.length) parent.appendChild(document.createTextNode(text.slice(at)));
  }

  function renderMarkdown(text, parent) {
    String(text).split(/\r?\n/).forEach(function (line, n) {
      if (n) parent.appendChild(el("br"));
      renderInline(line, parent, 0);
    });
  }

  // --- styles --------------------------------------------------------------------------------

  var CSS = [
    ":host{all:initial}",
    "*{box-sizing:border-box}",
    ".og{position:fixed;bottom:20px;z-index:2147483000;font:14px/1.45 system-ui,-apple-system,",
    "'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#1d2327}",
    ".og.right{right:20px}.og.left{left:20px}",
    ".launcher{width:56px;height:56px;border-radius:50%;border:0;cursor:pointer;",
    "background:var(--og-accent);color:#fff;box-shadow:0 6px 20px rgba(0,0,0,.25);",
    "display:flex;align-items:center;justify-content:center;position:relative}",
    ".og.right .launcher{margin-left:auto}",
    ".launcher svg{width:28px;height:28px;fill:currentColor}",
    ".launcher:focus-visible,button:focus-visible,textarea:focus-visible,a:focus-visible,",
    ".cards:focus-visible{outline:3px solid #1a73e8;outline-offset:2px}",
    ".badge{position:absolute;top:-2px;right:-2px;min-width:20px;height:20px;border-radius:10px;",
    "background:#d93025;color:#fff;font-size:12px;line-height:20px;padding:0 5px}",
    ".panel{width:min(370px,calc(100vw - 40px));height:min(560px,calc(100vh - 110px));",
    "margin-bottom:12px;background:#fff;border-radius:14px;overflow:hidden;display:flex;",
    "flex-direction:column;box-shadow:0 12px 40px rgba(0,0,0,.28)}",
    ".panel[hidden]{display:none}",
    "header{background:var(--og-accent);color:#fff;padding:12px 14px;display:flex;",
    "align-items:center;gap:8px}",
    "header h2{font-size:16px;margin:0;font-weight:600;flex:1}",
    ".status{font-size:12px;opacity:.9}",
    ".close{background:transparent;border:0;color:#fff;cursor:pointer;width:32px;height:32px;",
    "border-radius:6px;display:flex;align-items:center;justify-content:center}",
    ".close svg{width:20px;height:20px;fill:currentColor}",
    ".log{flex:1;overflow-y:auto;padding:14px;display:flex;flex-direction:column;gap:8px;",
    "background:#f6f7f9}",
    ".msg{max-width:85%;padding:8px 12px;border-radius:14px;white-space:normal;",
    "overflow-wrap:anywhere}",
    ".bot{align-self:flex-start;background:#fff;border:1px solid #e3e6ea;border-bottom-left-radius:4px}",
    ".me{align-self:flex-end;background:var(--og-accent);color:#fff;border-bottom-right-radius:4px}",
    ".note{align-self:center;font-size:12px;color:#6b7280;text-align:center}",
    ".msg a{color:inherit;text-decoration:underline}",
    ".msg code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:90%;",
    "background:rgba(0,0,0,.07);padding:1px 4px;border-radius:4px}",
    ".wrap{display:flex;flex-direction:column;gap:6px;align-self:stretch;align-items:flex-start}",
    ".buttons{display:flex;flex-wrap:wrap;gap:6px}",
    ".buttons button{border:1px solid var(--og-accent);color:var(--og-accent);background:#fff;",
    "border-radius:16px;padding:6px 12px;font:inherit;cursor:pointer}",
    ".buttons button:hover:not([disabled]){background:var(--og-accent);color:#fff}",
    ".buttons button[disabled]{opacity:.5;cursor:default}",
    ".cards{display:flex;gap:10px;overflow-x:auto;scroll-snap-type:x mandatory;max-width:100%;",
    "padding:2px 2px 8px;list-style:none;margin:0}",
    ".card{flex:0 0 170px;scroll-snap-align:start;background:#fff;border:1px solid #e3e6ea;",
    "border-radius:12px;overflow:hidden;display:flex;flex-direction:column}",
    ".card .img{height:110px;background:#eceff3;display:flex;align-items:center;",
    "justify-content:center;color:#9aa3ad;font-size:28px;font-weight:600}",
    ".card img{width:100%;height:110px;object-fit:cover;display:block}",
    ".card .body{padding:8px 10px;display:flex;flex-direction:column;gap:4px;flex:1}",
    ".card .title{font-weight:600;font-size:13px;overflow-wrap:anywhere}",
    ".card .price{color:#374151}",
    ".card a{margin-top:auto;color:var(--og-accent);font-weight:600;text-decoration:none}",
    ".card a:hover{text-decoration:underline}",
    ".typing{padding:0 14px 6px;background:#f6f7f9;font-size:12px;color:#6b7280}",
    ".typing[hidden]{display:none}",
    ".dots span{display:inline-block;width:6px;height:6px;margin-right:3px;border-radius:50%;",
    "background:#9aa3ad;animation:og-b 1.2s infinite}",
    ".dots span:nth-child(2){animation-delay:.2s}.dots span:nth-child(3){animation-delay:.4s}",
    "@keyframes og-b{0%,80%,100%{opacity:.3}40%{opacity:1}}",
    "@media (prefers-reduced-motion:reduce){.dots span{animation:none}}",
    "form{display:flex;gap:8px;padding:10px;border-top:1px solid #e3e6ea;background:#fff}",
    "textarea{flex:1;resize:none;border:1px solid #cfd5dc;border-radius:10px;padding:8px 10px;",
    "font:inherit;color:inherit;height:40px;max-height:120px}",
    ".send{border:0;border-radius:10px;background:var(--og-accent);color:#fff;padding:0 14px;",
    "font:inherit;font-weight:600;cursor:pointer}",
    ".sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);",
    "white-space:nowrap}",
  ].join("");

  // --- the UI --------------------------------------------------------------------------------

  var CHAT_ICON =
    "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2zm3 6v2h2v-2H7zm4 0v2h2v-2h-2z" +
    "m4 0v2h2v-2h-2z";
  var CLOSE_ICON =
    "M18.3 5.7 12 12l6.3 6.3-1.4 1.4L10.6 13.4 4.3 19.7 2.9 18.3 9.2 12 2.9 5.7 4.3 4.3l6.3 " +
    "6.3 6.3-6.3z";

  // A custom element, not a <div>: the host page's element selectors do not reach it.
  var host = el("omnigate-chat", { id: "omnigate-chat", "data-state": "idle" });
  host.style.setProperty("display", "block", "important");
  host.style.setProperty("--og-accent", "#2f6f4e");
  host.style.setProperty("--og-accent", cfg.color); // an invalid colour is ignored
  var root = host.attachShadow({ mode: "open" });
  var style = el("style", { text: CSS });

  var ids = { panel: "og-panel", title: "og-title" };
  var titleEl = el("h2", { id: ids.title, text: cfg.title });
  var statusEl = el("span", { className: "status", role: "status", text: "" });
  var closeBtn = el("button", { type: "button", className: "close", "aria-label": "Close chat" }, [
    icon(CLOSE_ICON),
  ]);
  var logEl = el("div", {
    className: "log",
    role: "log",
    "aria-live": "polite",
    "aria-relevant": "additions",
    "aria-label": "Conversation",
    tabindex: "0",
  });
  var typingEl = el("div", { className: "typing", hidden: "", "aria-live": "polite" }, [
    el("span", { className: "dots", "aria-hidden": "true" }, [el("span"), el("span"), el("span")]),
    el("span", { text: "typing…" }),
  ]);
  var input = el("textarea", {
    id: "og-input",
    rows: "1",
    maxlength: String(MAX_TEXT),
    placeholder: "Write a message…",
    autocomplete: "off",
  });
  var form = el("form", { "aria-label": "Send a message" }, [
    el("label", { className: "sr", for: "og-input", text: "Message" }),
    input,
    el("button", { type: "submit", className: "send", text: "Send" }),
  ]);
  var panel = el(
    "div",
    {
      id: ids.panel,
      className: "panel",
      role: "dialog",
      "aria-modal": "false",
      "aria-labelledby": ids.title,
      hidden: "",
    },
    [el("header", null, [titleEl, statusEl, closeBtn]), logEl, typingEl, form]
  );
  var badge = el("span", { className: "badge", hidden: "", "aria-hidden": "true" });
  var launcher = el(
    "button",
    {
      type: "button",
      className: "launcher",
      "aria-label": "Open chat: " + cfg.title,
      "aria-expanded": "false",
      "aria-controls": ids.panel,
    },
    [icon(CHAT_ICON), badge]
  );
  var shell = el("div", { className: "og " + cfg.position }, [panel, launcher]);
  root.appendChild(style);
  root.appendChild(shell);

  function isOpen() {
    return !panel.hasAttribute("hidden");
  }
  function open() {
    panel.removeAttribute("hidden");
    launcher.setAttribute("aria-expanded", "true");
    launcher.setAttribute("aria-label", "Close chat: " + cfg.title);
    state.unread = 0;
    badge.setAttribute("hidden", "");
    ensureConnected();
    scrollDown();
    input.focus();
  }
  function close() {
    panel.setAttribute("hidden", "");
    launcher.setAttribute("aria-expanded", "false");
    launcher.setAttribute("aria-label", "Open chat: " + cfg.title);
    launcher.focus();
  }
  launcher.addEventListener("click", function () {
    if (isOpen()) close();
    else open();
  });
  closeBtn.addEventListener("click", close);
  panel.addEventListener("keydown", function (e) {
    if (e.key === "Escape") {
      e.preventDefault();
      close();
    }
  });
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    input.value = "";
    sendMessage(text, null);
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit"));
    }
  });

  // --- the conversation: nodes ordered by key (reply seq; a visitor message sits just after
  // the reply it followed), so replayed replies and stored messages interleave correctly ----

  var rendered = {}; // seq -> true

  function place(node, key) {
    node.setAttribute("data-key", String(key));
    var last = logEl.lastElementChild;
    if (!last || parseFloat(last.getAttribute("data-key")) <= key) {
      logEl.appendChild(node);
      return;
    }
    var kids = logEl.children;
    for (var i = 0; i < kids.length; i++) {
      if (parseFloat(kids[i].getAttribute("data-key")) > key) {
        logEl.insertBefore(node, kids[i]);
        return;
      }
    }
    logEl.appendChild(node);
  }
  function scrollDown() {
    logEl.scrollTop = logEl.scrollHeight;
  }
  function note(text) {
    var n = el("div", { className: "msg note", role: "alert", text: text });
    place(n, state.lastSeq + 0.9);
    scrollDown();
  }
  function renderMine(m) {
    var n = el("div", { className: "msg me" });
    renderMarkdown(m.text, n);
    place(n, m.key);
  }
  function renderReply(seq, reply) {
    var wrap = el("div", { className: "wrap", "data-seq": String(seq) });
    if (reply.text) {
      var bubble = el("div", { className: "msg bot" });
      renderMarkdown(reply.text, bubble);
      wrap.appendChild(bubble);
    }
    if (reply.products && reply.products.length) wrap.appendChild(renderCards(reply.products));
    if (reply.buttons && reply.buttons.length) wrap.appendChild(renderButtons(reply.buttons));
    if (reply.handoff) {
      wrap.appendChild(el("div", { className: "msg note", text: "A person from our team will join." }));
    }
    place(wrap, seq);
  }
  var previews = {}; // reply_id -> {wrap, bubble, text}: replies shown while generated
  var finished = {}; // reply_id -> true once its reply frame came
  function renderDelta(id, text) {
    if (finished[id]) return;
    var p = previews[id];
    if (!p) {
      var wrap = el("div", { className: "wrap streaming", "data-reply-id": id });
      var bubble = el("div", { className: "msg bot streaming", "aria-busy": "true" });
      wrap.appendChild(bubble);
      // After the visitor's messages that follow the newest reply, before the next reply.
      place(wrap, state.lastSeq + 0.99);
      p = previews[id] = { wrap: wrap, bubble: bubble, text: "" };
    }
    p.text += text;
    p.bubble.textContent = "";
    renderMarkdown(p.text, p.bubble);
    scrollDown();
  }
  function dropPreview(id) {
    var node = previews[id] && previews[id].wrap;
    if (node && node.parentNode) node.parentNode.removeChild(node);
    delete previews[id];
  }
  function renderButtons(buttons) {
    var box = el("div", { className: "buttons", role: "group", "aria-label": "Suggested replies" });
    buttons.forEach(function (b) {
      var btn = el("button", { type: "button", text: String(b.title) });
      btn.addEventListener("click", function () {
        Array.prototype.forEach.call(box.querySelectorAll("button"), function (x) {
          x.disabled = true;
        });
        sendMessage(String(b.title), String(b.payload));
      });
      box.appendChild(btn);
    });
    return box;
  }
  function formatPrice(price, currency) {
    try {
      return new Intl.NumberFormat(navigator.language || "en", {
        style: "currency",
        currency: String(currency),
      }).format(Number(price));
    } catch (e) {
      return Number(price).toFixed(2) + " " + String(currency || "");
    }
  }
  function renderCards(products) {
    var list = el("ul", { className: "cards", "aria-label": "Products", tabindex: "0" });
    products.forEach(function (p) {
      var title = String(p.title || "");
      var imgBox = el("div", { className: "img", "aria-hidden": "true", text: title.charAt(0) });
      var src = safeUrl(p.image_url);
      if (src) {
        var img = el("img", { alt: "", loading: "lazy" });
        img.addEventListener("error", function () {
          if (img.parentNode) img.parentNode.replaceChild(imgBox, img);
        });
        img.src = src;
        imgBox = img;
      }
      var body = el("div", { className: "body" }, [
        el("div", { className: "title", text: title }),
        el("div", { className: "price", text: formatPrice(p.price, p.currency) }),
      ]);
      var href = safeUrl(p.url);
      if (href) {
        var a = el("a", { target: "_blank", rel: "noopener noreferrer", text: "View product" });
        a.href = href;
        a.setAttribute("aria-label", "View " + title);
        body.appendChild(a);
      }
      list.appendChild(el("li", { className: "card" }, [imgBox, body]));
    });
    return list;
  }

  var typingTimer = null;
  function showTyping(on) {
    clearTimeout(typingTimer);
    if (on) {
      typingEl.removeAttribute("hidden");
      typingTimer = setTimeout(function () {
        showTyping(false);
      }, TYPING_MS);
    } else {
      typingEl.setAttribute("hidden", "");
    }
  }

  function drawStored() {
    if (cfg.greeting) {
      var g = el("div", { className: "msg bot" });
      renderMarkdown(cfg.greeting, g);
      place(g, -1);
    }
    state.mine.forEach(renderMine);
  }

  function resetConversation(sessionId) {
    state.sessionId = sessionId;
    state.mine = [];
    state.lastSeq = 0;
    rendered = {};
    while (logEl.firstChild) logEl.removeChild(logEl.firstChild);
    drawStored();
  }

  // --- the connection ----------------------------------------------------------------------

  function setStatus(s) {
    host.setAttribute("data-state", s);
    statusEl.textContent =
      s === "online" ? "" : s === "connecting" ? "Connecting…" : "Reconnecting…";
  }

  function newId() {
    var b = new Uint8Array(12);
    (window.crypto || window.msCrypto).getRandomValues(b);
    return Array.prototype.map
      .call(b, function (x) {
        return ("0" + x.toString(16)).slice(-2);
      })
      .join("");
  }

  function sendMessage(text, payload) {
    if (text.length > MAX_TEXT) text = text.slice(0, MAX_TEXT);
    // After the newest reply shown, and never before the visitor's own earlier messages (the
    // replay after a reload may not have arrived yet).
    var prev = state.mine.length ? Math.floor(state.mine[state.mine.length - 1].key) : 0;
    var after = Math.max(state.lastSeq, prev);
    var same = state.mine.filter(function (m) {
      return Math.floor(m.key) === after;
    }).length;
    var m = { id: newId(), text: text, key: after + 0.5 + Math.min(same, 400) / 1000, at: Date.now() };
    if (payload) m.payload = payload;
    state.mine.push(m);
    if (state.mine.length > KEEP_MINE) state.mine = state.mine.slice(-KEEP_MINE);
    save();
    renderMine(m);
    scrollDown();
    var frame = { type: "message", id: m.id, text: text };
    if (payload) frame.payload = payload;
    if (!(state.online && transmit(frame))) state.outbox.push(frame);
    ensureConnected();
  }

  function transmit(frame) {
    try {
      state.ws.send(JSON.stringify(frame));
      return true;
    } catch (e) {
      return false;
    }
  }

  function ensureConnected() {
    if (state.ws || state.connecting || state.timer) return;
    connect();
  }

  function connect() {
    state.connecting = true;
    setStatus(state.attempts ? "reconnecting" : "connecting");
    fetch(BASE + "/web/session", {
      method: "POST",
      // text/plain keeps this a simple request: no CORS preflight from the shop's pages
      headers: { "Content-Type": "text/plain" },
      body: JSON.stringify(state.token ? { token: state.token } : {}),
      credentials: "omit",
    })
      .then(function (r) {
        if (!r.ok) throw new Error("session: HTTP " + r.status);
        return r.json();
      })
      .then(function (s) {
        if (s.session_id !== state.sessionId) resetConversation(s.session_id);
        state.token = s.token;
        save();
        scheduleRefresh();
        openSocket();
      })
      .catch(function () {
        state.connecting = false;
        retry();
      });
  }

  // The token slides forward: renewed a few minutes before it expires, so a visitor who keeps
  // the page open for days keeps the conversation. The socket, closed by the gateway when its
  // token expires, reconnects with the new one.
  var refreshTimer = null;
  function scheduleRefresh() {
    clearTimeout(refreshTimer);
    var exp = Number(String(state.token).split(".")[2]) * 1000;
    if (!exp) return;
    var inMs = Math.min(Math.max(exp - Date.now() - 5 * 60 * 1000, 30 * 1000), 2147483647);
    refreshTimer = setTimeout(function () {
      fetch(BASE + "/web/session", {
        method: "POST",
        headers: { "Content-Type": "text/plain" },
        body: JSON.stringify({ token: state.token }),
        credentials: "omit",
      })
        .then(function (r) {
          return r.ok ? r.json() : null;
        })
        .then(function (s) {
          if (s && s.session_id === state.sessionId) {
            state.token = s.token;
            save();
          }
          scheduleRefresh();
        })
        .catch(scheduleRefresh);
    }, inMs);
  }

  function openSocket() {
    var ws;
    try {
      // The token goes in the first frame, not the URL: proxies and access logs keep URLs.
      ws = new WebSocket(WS_BASE + "/web/ws");
    } catch (e) {
      state.connecting = false;
      retry();
      return;
    }
    state.ws = ws;
    ws.onopen = function () {
      ws.send(JSON.stringify({ type: "auth", token: state.token }));
      state.connecting = false;
      state.online = true;
      state.attempts = 0;
      setStatus("online");
      transmit({ type: "resume", after: state.lastSeq });
      // Messages of the last minutes go again: one may have been lost with the old socket,
      // and the gateway drops the ones it already has (same client id).
      var recent = state.mine.filter(function (m) {
        return Date.now() - m.at < RESEND_WINDOW_MS;
      });
      var queued = state.outbox.map(function (f) {
        return f.id;
      });
      recent.forEach(function (m) {
        if (queued.indexOf(m.id) >= 0) return;
        var f = { type: "message", id: m.id, text: m.text };
        if (m.payload) f.payload = m.payload;
        transmit(f);
      });
      var out = state.outbox;
      state.outbox = [];
      out.forEach(transmit);
    };
    ws.onmessage = function (e) {
      var frame;
      try {
        frame = JSON.parse(e.data);
      } catch (err) {
        return;
      }
      onFrame(frame);
    };
    ws.onclose = function () {
      var wasOnline = state.online;
      state.ws = null;
      state.online = false;
      state.connecting = false;
      showTyping(false);
      if (wasOnline) setStatus("reconnecting");
      retry();
    };
  }

  function retry() {
    if (state.timer) return;
    setStatus("reconnecting");
    var delay = Math.min(30000, 500 * Math.pow(2, state.attempts));
    delay = delay * (0.5 + Math.random() / 2);
    state.attempts += 1;
    state.timer = setTimeout(function () {
      state.timer = null;
      connect();
    }, delay);
  }

  function reconnectNow() {
    if (state.online || state.connecting) return;
    if (!state.token && !isOpen()) return;
    clearTimeout(state.timer);
    state.timer = null;
    state.attempts = 0;
    connect();
  }
  window.addEventListener("online", reconnectNow);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") reconnectNow();
  });

  function onFrame(frame) {
    if (!frame || typeof frame !== "object") return;
    if (frame.type === "reply" && typeof frame.seq === "number" && frame.reply) {
      showTyping(false);
      if (typeof frame.reply_id === "string") {
        finished[frame.reply_id] = true;
        dropPreview(frame.reply_id);
      }
      if (rendered[frame.seq]) return;
      Object.keys(previews).forEach(dropPreview); // left over: its reply came without its id
      rendered[frame.seq] = true;
      var live = frame.seq > state.lastSeq;
      state.lastSeq = Math.max(state.lastSeq, frame.seq);
      renderReply(frame.seq, frame.reply);
      scrollDown();
      if (live && !isOpen()) {
        state.unread += 1;
        badge.textContent = String(state.unread);
        badge.removeAttribute("hidden");
      }
    } else if (frame.type === "delta" && typeof frame.reply_id === "string") {
      showTyping(false);
      renderDelta(frame.reply_id, String(frame.text || ""));
    } else if (frame.type === "typing") {
      if (Object.keys(previews).length) return; // the reply is already growing on screen
      showTyping(true);
    } else if (frame.type === "error") {
      note(String(frame.error || "something went wrong"));
    }
  }

  // --- start -------------------------------------------------------------------------------

  function mount() {
    document.body.appendChild(host);
    drawStored();
    // A returning visitor (a stored token) connects at once, to show the conversation so
    // far; a new one only when they open the chat.
    if (state.token) ensureConnected();
    if (cfg.open) open();
  }

  window.omnigate = {
    open: open,
    close: close,
    toggle: function () {
      if (isOpen()) close();
      else open();
    },
  };
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
