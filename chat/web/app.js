'use strict';
// The chat page. Everything a user typed reaches the DOM through
// textContent only, never as HTML.
const $ = (id) => document.getElementById(id);
const list = $('messages');
const shown = new Map(); // message id -> li, so an own message shown as pending is replaced

function newId() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

function show(m) {
  let li = shown.get(m.id);
  if (!li) {
    li = document.createElement('li');
    list.appendChild(li);
    shown.set(m.id, li);
  }
  li.replaceChildren();
  li.className = m.pending ? 'pending' : '';
  li.dataset.id = m.id;
  const nick = document.createElement('span');
  nick.className = 'nick';
  nick.textContent = m.nick;
  const text = document.createElement('span');
  text.className = 'text';
  text.textContent = m.text;
  const via = document.createElement('span');
  via.className = 'via';
  via.textContent = m.pending ? '(sending)' : `via ${m.replica}`;
  li.append(nick, text, via);
  list.scrollTop = list.scrollHeight;
}

function setError(e) { $('error').textContent = e ? (e.error || String(e)) : ''; }

let sock;
function connect() {
  const nick = localStorage.getItem('nick') || '';
  sock = new TinySocket('/socket.io/', nick ? { nick } : {});
  sock.onstate = (s) => { $('transport').textContent = s; };
  sock.on('hello', (h) => {
    $('replica').textContent = h.replica;
    $('nick').value = h.nick;
    $('room').textContent = h.room;
  });
  sock.on('history', (h) => {
    list.replaceChildren();
    shown.clear();
    $('room').textContent = h.room;
    for (const m of h.messages) show(m);
  });
  sock.on('message', show);
  sock.on('chat:error', setError);
  sock.on('disconnect', () => setTimeout(connect, 1000));
  sock.open().catch((e) => { setError(e); sock.close(String(e)); });
}

$('nick-form').addEventListener('submit', (ev) => ev.preventDefault());
$('nick-set').addEventListener('click', () => {
  const nick = $('nick').value.trim();
  sock.emit('nick', nick, (r) => {
    if (!r.ok) return setError(r);
    setError('');
    localStorage.setItem('nick', r.nick);
  });
});
$('join').addEventListener('click', () => {
  sock.emit('join', $('room-name').value.trim(), (r) => {
    if (!r.ok) return setError(r);
    setError('');
    list.replaceChildren();
    shown.clear();
    $('room').textContent = r.room;
    for (const m of r.messages) show(m);
  });
});
$('send-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const text = $('text').value;
  if (!text.trim()) return;
  const id = newId();
  sock.emit('message', { text, id }, (r) => {
    if (!r.ok) {
      const li = shown.get(id);
      if (li) { li.remove(); shown.delete(id); }
      return setError(r);
    }
    setError('');
  });
  $('text').value = '';
});
// /meta first: the page's own request already pinned this browser to a
// replica, and the session must open on that one.
fetch('/meta', { credentials: 'same-origin' }).then((r) => r.json()).then((m) => { $('replica').textContent = m.replica; }).catch(() => {}).then(connect);
