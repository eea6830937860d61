'use strict';

// A line-driven socket.io-client for latch's chat end-to-end tests.
//
//   node driver.js --url http://127.0.0.1:8000
//
// stdin, one JSON command per line:
//   {"op":"connect","name":"a","cookie":"heyy=..."}   open a client; the
//        cookie (from the Go test's jar, which /meta pinned) goes on every
//        polling request and on the WebSocket upgrade
//   {"op":"emit","name":"a","event":"message","data":...,"ref":"r1"}
//        emit with an acknowledgement; the reply comes back as "reply"
//   {"op":"close","name":"a"}
// stdout, one JSON event per line, each with the client's name and "at"
// (Date.now()):
//   {"ev":"hello","replica":...}  {"ev":"upgrade","transport":"websocket"}
//   {"ev":"message","msg":{...}}  {"ev":"reply","ref":"r1","reply":{...}}
//   {"ev":"chat:error","error":{...}}  {"ev":"connect_error","error":"..."}
//   {"ev":"disconnect","reason":"..."}
// The process ends when stdin closes.

const { parseArgs } = require('node:util');
const readline = require('node:readline');
const { io } = require('socket.io-client');

const { values: args } = parseArgs({ options: { url: { type: 'string' } } });
if (!args.url) {
  process.stderr.write('driver.js: --url is required\n');
  process.exit(2);
}

const clients = new Map();
const out = (name, ev, rest) => process.stdout.write(JSON.stringify({ name, ev, at: Date.now(), ...rest }) + '\n');

function connect(cmd) {
  const socket = io(args.url, {
    forceNew: true,
    // With a pinned cookie, send exactly that one: engine.io-client's own
    // jar (withCredentials) would add a second Cookie header.
    withCredentials: !cmd.cookie,
    transports: ['polling', 'websocket'],
    upgrade: true,
    reconnectionDelay: 200,
    reconnectionDelayMax: 1000,
    extraHeaders: cmd.cookie ? { Cookie: cmd.cookie } : {},
    auth: cmd.nick ? { nick: cmd.nick } : {},
  });
  const name = cmd.name;
  clients.set(name, socket);
  socket.io.on('open', () => {
    const engine = socket.io.engine;
    out(name, 'open', { transport: engine.transport.name });
    engine.on('upgrade', (t) => out(name, 'upgrade', { transport: t.name }));
    engine.on('upgradeError', (e) => out(name, 'upgradeError', { error: String(e && e.message) }));
  });
  socket.on('connect', () => out(name, 'connect', {}));
  socket.on('connect_error', (e) => out(name, 'connect_error', { error: String(e && e.message) }));
  socket.on('disconnect', (reason) => out(name, 'disconnect', { reason }));
  socket.on('hello', (h) => out(name, 'hello', { replica: h.replica, nick: h.nick, room: h.room }));
  socket.on('message', (m) => out(name, 'message', { msg: m }));
  socket.on('ack', (a) => out(name, 'ack', { reply: a }));
  socket.on('chat:error', (e) => out(name, 'chat:error', { error: e }));
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (e) {
    out('', 'bad_command', { error: String(e) });
    return;
  }
  const socket = clients.get(cmd.name);
  switch (cmd.op) {
    case 'connect':
      connect(cmd);
      break;
    case 'emit':
      if (!socket) return out(cmd.name, 'bad_command', { error: 'no such client' });
      socket.timeout(30000).emit(cmd.event, cmd.data, (err, reply) => {
        out(cmd.name, 'reply', { ref: cmd.ref, reply: err ? { ok: false, code: 'timeout', error: String(err) } : reply });
      });
      break;
    case 'close':
      if (socket) socket.close();
      clients.delete(cmd.name);
      break;
    default:
      out(cmd.name || '', 'bad_command', { error: `unknown op ${cmd.op}` });
  }
});
rl.on('close', () => {
  for (const s of clients.values()) s.close();
  process.exit(0);
});
