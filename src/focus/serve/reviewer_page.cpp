// The reviewer page served at GET /review (review_routes.cpp): one item at a time, the image
// large beside the model's evidence (the attention rollout or Grad-CAM overlay computed when the
// item was queued: where the model looked, to guide where the person looks; a text item is shown
// with each token shaded by the model's attention-pooling weight), the model's top 3
// with probabilities, a button per class; the keyboard drives it (1-9 and 0: classes 1-10,
// Enter: the model's answer, S: skip, U: undo the last label, which brings that item back to be
// labelled again); counters for the queue and the reviewer's pace. It talks only to this server (the review key, typed once, stays in the tab's
// sessionStorage) and loads nothing else: the Content-Security-Policy allows scripts and styles
// from this origin only, images from data: URLs, no frames, no forms.
#include "focus/serve/review_desk.hpp"

namespace focus {

const char* reviewer_page_csp() {
  return "default-src 'none'; script-src 'self'; style-src 'self'; img-src data:; connect-src 'self'; "
         "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
}

const std::string& reviewer_page_html() {
  static const std::string html = R"(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>focus review</title>
<link rel="stylesheet" href="/review/app.css">
<script src="/review/app.js" defer></script>
</head>
<body>
<header><strong>focus review</strong>
  <span id="counters">queue: <b id="waiting">-</b> waiting, <b id="claimed">-</b> claimed, <b id="done">-</b> done
  &middot; you: <b id="mine">0</b> labelled, <b id="pace">-</b>/h</span>
  <button id="logout" hidden>log out</button></header>
<main>
<section id="login">
  <p>Review key (a key with the <code>review</code> role, from <code>focus keys create</code>):</p>
  <input id="key" type="password" autocomplete="off" size="70" aria-label="review key">
  <button id="go">start</button>
  <p id="login-error" class="error"></p>
</section>
<section id="work" hidden>
  <div id="item">
    <figure id="image-box"><img id="image" alt="the item to label" width="280" height="280">
      <figcaption>the item</figcaption></figure>
    <figure id="text-box" hidden><p id="text-item"></p>
      <figcaption>the text, each token shaded by the model's attention pooling (its evidence)</figcaption></figure>
    <figure id="evidence-box" hidden><img id="evidence" alt="the model's evidence" height="280">
      <figcaption>where the model looked (<span id="evidence-method"></span>)</figcaption></figure>
    <div id="side">
      <p>model <b id="model"></b> says <b id="prediction"></b> (error score <span id="score"></span>)</p>
      <ol id="top"></ol>
      <div id="classes"></div>
      <p class="help">keys: <kbd>1</kbd>-<kbd>9</kbd>, <kbd>0</kbd> a class &middot; <kbd>Enter</kbd> the model's
      answer &middot; <kbd>S</kbd> skip &middot; <kbd>U</kbd> undo the last label</p>
      <p id="status"></p>
    </div>
  </div>
  <p id="empty" hidden>Nothing waits for review. Checking again every 5 s.</p>
</section>
</main>
</body>
</html>
)";
  return html;
}

const std::string& reviewer_page_css() {
  static const std::string css = R"(body { font: 15px system-ui, sans-serif; margin: 0; color: #222; }
header { padding: 8px 16px; background: #f2f2f2; display: flex; gap: 24px; align-items: center; }
main { padding: 16px; }
#item { display: flex; gap: 24px; }
#image, #evidence { image-rendering: pixelated; border: 1px solid #ccc; background: #000; }
figure { margin: 0; }
#text-box { max-width: 520px; }
#text-item { font-size: 18px; line-height: 1.9; }
.tok { display: inline-block; padding: 0 3px; margin: 0 3px 4px 0; border-radius: 3px; }
figcaption { color: #666; font-size: 13px; }
#status.undone { color: #a60; }
#classes button { margin: 3px; min-width: 110px; text-align: left; }
#classes button.model { font-weight: bold; }
.help { color: #666; }
.error { color: #b00; }
kbd { border: 1px solid #aaa; border-radius: 3px; padding: 0 4px; }
)";
  return css;
}

const std::string& reviewer_page_js() {
  static const std::string js = R"JS('use strict';
// The reviewer page's logic: claim, show, label by key, repeat. See reviewer_page.cpp.
let key = sessionStorage.getItem('focus-review-key') || '';
let item = null, busy = false, mine = 0, started = Date.now(), emptyTimer = null;
const done = [];  // ids this page labelled, newest last: U takes the last one back
const $ = (id) => document.getElementById(id);

async function api(method, path, body) {
  const r = await fetch(path, {method, headers: {'Authorization': 'Bearer ' + key,
                                                 'Content-Type': 'application/json'},
                               body: body === undefined ? undefined : JSON.stringify(body)});
  let data = null;
  if (r.status !== 204) data = await r.json().catch(() => null);
  return {status: r.status, data};
}

function show(section) {
  $('login').hidden = section !== 'login';
  $('work').hidden = section !== 'work';
  $('logout').hidden = section === 'login';
}

function counters(q) {
  if (q) { $('waiting').textContent = q.waiting; $('claimed').textContent = q.claimed; $('done').textContent = q.done; }
  $('mine').textContent = mine;
  const hours = (Date.now() - started) / 3600000;
  $('pace').textContent = mine > 0 ? Math.round(mine / hours) : '-';
}

function render() {
  $('item').dataset.id = item.id;
  const ev = item.evidence;
  const isText = typeof item.text === 'string';
  $('image-box').hidden = isText;
  $('text-box').hidden = !isText;
  $('evidence-box').hidden = isText || !ev || !ev.png;
  if (isText) {
    const tokens = ev && Array.isArray(ev.tokens) ? ev.tokens : [item.text];
    const weights = ev && Array.isArray(ev.weights) ? ev.weights : [];
    const top = Math.max(1e-9, ...weights);
    $('text-item').replaceChildren(...tokens.map((t, i) => {
      const s = document.createElement('span');
      s.className = 'tok';
      s.textContent = t;
      s.title = weights.length ? 'pooling weight ' + weights[i].toFixed(3) : '';
      s.style.backgroundColor = 'rgba(255, 140, 0, ' + (weights.length ? (0.85 * weights[i] / top).toFixed(3) : 0) + ')';
      return s;
    }));
  } else {
    $('image').src = item.image;
    if (ev && ev.png) { $('evidence').src = ev.png; $('evidence-method').textContent = ev.method; }
  }
  $('model').textContent = item.model;
  $('prediction').textContent = item.prediction;
  $('score').textContent = item.score.toFixed(3);
  const top = $('top');
  top.replaceChildren(...item.top.map((t) => {
    const li = document.createElement('li');
    li.textContent = t.name + ' ' + (100 * t.prob).toFixed(1) + '%';
    return li;
  }));
  const classes = $('classes');
  classes.replaceChildren(...item.classes.map((name, i) => {
    const b = document.createElement('button');
    b.textContent = (i < 10 ? ((i + 1) % 10) + '  ' : '') + name;
    if (name === item.prediction) b.className = 'model';
    b.addEventListener('click', () => submit(name));
    return b;
  }));
  $('status').textContent = '';
  $('status').className = '';
}

async function next() {
  busy = true;
  clearTimeout(emptyTimer);
  const r = await api('POST', '/v1/review/next');
  busy = false;
  if (r.status === 401 || r.status === 403) { logout((r.data && r.data.error) || 'key refused'); return; }
  if (r.status === 204) {
    item = null; $('item').hidden = true; $('empty').hidden = false;
    const s = await api('GET', '/v1/review/stats');
    if (s.status === 200) counters(s.data);
    emptyTimer = setTimeout(next, 5000);
    return;
  }
  if (r.status !== 200) { $('status').textContent = 'error: ' + ((r.data && r.data.error) || r.status); return; }
  item = r.data; $('item').hidden = false; $('empty').hidden = true;
  render(); counters(item.queue);
}

async function submit(label) {
  if (!item || busy) return;
  busy = true;
  $('status').textContent = 'saving ' + label + '...';
  const r = await api('POST', '/v1/review/items/' + item.id + '/label', {label});
  busy = false;
  if (r.status !== 200) { $('status').textContent = 'not saved: ' + ((r.data && r.data.error) || r.status); return; }
  mine += 1;
  done.push(item.id);
  await next();
}

async function undo() {
  if (busy || done.length === 0) return;
  busy = true;
  if (item) await api('POST', '/v1/review/items/' + item.id + '/skip');  // the one on screen goes back
  const id = done.pop();
  const r = await api('POST', '/v1/review/items/' + id + '/undo');
  busy = false;
  if (r.status !== 200) {
    $('status').textContent = 'cannot undo: ' + ((r.data && r.data.error) || r.status);
    await next();
    return;
  }
  mine -= 1;
  item = r.data; $('item').hidden = false; $('empty').hidden = true;
  clearTimeout(emptyTimer);
  render(); counters(item.queue);
  $('status').textContent = 'undone: it was labelled ' + item.undone_label + '; label it again';
  $('status').className = 'undone';
}

async function skip() {
  if (!item || busy) return;
  busy = true;
  await api('POST', '/v1/review/items/' + item.id + '/skip');
  busy = false;
  await next();
}

function logout(message) {
  key = ''; sessionStorage.removeItem('focus-review-key'); item = null;
  $('login-error').textContent = message || '';
  show('login');
}

document.addEventListener('keydown', (e) => {
  if ($('work').hidden || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.key === 'u' || e.key === 'U') { e.preventDefault(); undo(); return; }
  if (!item) return;
  if (e.key >= '0' && e.key <= '9') {
    const i = e.key === '0' ? 9 : Number(e.key) - 1;
    if (i < item.classes.length) { e.preventDefault(); submit(item.classes[i]); }
  } else if (e.key === 'Enter') {
    e.preventDefault(); submit(item.prediction);
  } else if (e.key === 's' || e.key === 'S') {
    e.preventDefault(); skip();
  }
});

document.addEventListener('DOMContentLoaded', () => {
  $('go').addEventListener('click', () => {
    key = $('key').value.trim();
    if (!key) return;
    sessionStorage.setItem('focus-review-key', key);
    $('key').value = '';
    show('work'); next();
  });
  $('key').addEventListener('keydown', (e) => { if (e.key === 'Enter') $('go').click(); });
  $('logout').addEventListener('click', () => logout(''));
  if (key) { show('work'); next(); } else { show('login'); }
});
)JS";
  return js;
}

}  // namespace focus
