"""The chat page served at ``/``: a person talks to the app and rates its answers.

A static page: the only server value in it is the app name (escaped, and passed to the script as
JSON). The token comes from a login form or the URL fragment (``/#token=...``: a fragment never
reaches the server, so it is never logged) and is kept in sessionStorage; the fragment is removed
from the address bar at once. Every text the model or the user wrote is put in with
``textContent``, never as HTML.
"""

from __future__ import annotations

import json
from html import escape

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__ · cellops</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1f2328}
header{background:#24292f;color:#fff;padding:8px 16px}main{max-width:760px;margin:0 auto;padding:16px}
#log .msg{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:8px 12px;margin:8px 0;white-space:pre-wrap}
#log .user{background:#ddf4ff}.meta{color:#57606a;font-size:12px;margin-top:4px}
.rate button{margin-right:4px}form{display:flex;gap:8px}input,textarea{flex:1;padding:6px}
.hidden{display:none}.err{color:#cf222e}
</style></head><body>
<header><b>__TITLE__</b> <span id="who"></span></header>
<main>
<form id="login"><input id="token" type="password" placeholder="API token" autocomplete="off">
<button type="submit">Sign in</button></form>
<div id="chat" class="hidden"><div id="log"></div>
<form id="ask"><input id="q" placeholder="Ask something" autocomplete="off"><button type="submit">Send</button></form>
<p id="status" class="err"></p></div>
</main>
<script>
const APP = __APP__;
const store = window.sessionStorage;
const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
if (m) { store.setItem("cellops-token", decodeURIComponent(m[1])); history.replaceState(null, "", location.pathname); }
let user = store.getItem("cellops-user");
if (!user) { user = "web-" + Math.random().toString(36).slice(2, 10); store.setItem("cellops-user", user); }
const turns = [];
const $ = (id) => document.getElementById(id);
function showChat() { $("login").classList.add("hidden"); $("chat").classList.remove("hidden"); $("q").focus(); }
if (store.getItem("cellops-token")) showChat();
$("login").addEventListener("submit", (e) => { e.preventDefault(); store.setItem("cellops-token", $("token").value.trim()); $("token").value = ""; showChat(); });
function bubble(cls, text) {
  const d = document.createElement("div"); d.className = "msg " + cls;
  const t = document.createElement("div"); t.className = "text"; t.textContent = text; d.appendChild(t);
  $("log").appendChild(d); return d;
}
async function api(path, body) {
  const r = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json",
    "Authorization": "Bearer " + store.getItem("cellops-token")}, body: JSON.stringify(body)});
  const data = await r.json().catch(() => ({}));
  if (!r.ok) { if (r.status === 401) { store.removeItem("cellops-token"); location.reload(); }
    throw new Error((data.error && data.error.message) || ("HTTP " + r.status)); }
  return data;
}
function rater(box, id) {
  const bar = document.createElement("div"); bar.className = "rate meta";
  const fix = document.createElement("textarea"); fix.placeholder = "better answer (optional)"; fix.rows = 2;
  const note = document.createElement("span");
  for (const [label, rating] of [["\\u{1F44D}", "up"], ["\\u{1F44E}", "down"]]) {
    const b = document.createElement("button"); b.type = "button"; b.textContent = label; b.dataset.rating = rating;
    b.addEventListener("click", async () => {
      try { await api("/v1/feedback", {response_id: id, rating, correction: fix.value});
            note.textContent = " thanks, recorded (" + rating + ")"; }
      catch (err) { note.textContent = " " + err.message; }
    });
    bar.appendChild(b);
  }
  bar.appendChild(fix); bar.appendChild(note); box.appendChild(bar);
}
$("ask").addEventListener("submit", async (e) => {
  e.preventDefault(); const q = $("q").value; if (!q.trim()) return; $("q").value = ""; $("status").textContent = "";
  bubble("user", q); turns.push({role: "user", content: q});
  const box = bubble("assistant", "\\u2026");
  try {
    const r = await api("/v1/chat/completions", {model: APP, messages: turns, user: user});
    const text = r.choices[0].message.content; box.querySelector(".text").textContent = text;
    turns.push({role: "assistant", content: text});
    const meta = document.createElement("div"); meta.className = "meta";
    meta.textContent = (r.cellops ? r.cellops.target : "") + " \\u00b7 " + r.usage.completion_tokens + " tokens"
      + (r.citations && r.citations.length ? " \\u00b7 sources: " + r.citations.map((c) => "[" + c.n + "] " + c.source).join(", ") : "");
    box.appendChild(meta); rater(box, r.id);
  } catch (err) { box.remove(); turns.pop(); $("status").textContent = err.message; }
});
</script></body></html>
"""


def chat_page(app: str) -> str:
    # json.dumps does not escape '<', so '</script>' in a name could end the script: escape it
    as_js = json.dumps(app).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return _PAGE.replace("__TITLE__", escape(app)).replace("__APP__", as_js)
