'use strict';

// Many socket.io-client clients against one URL (latch in the Go test).
//
//   node clients.js --url http://127.0.0.1:8000 [--clients 50] [--messages 10] [--timeout 40000] [--no-cookies]
//
// Each client has its own engine.io session and, with withCredentials: true,
// its own cookie jar (engine.io-client keeps one per connection on Node and
// sends it on polling requests and on the WebSocket upgrade). --no-cookies
// turns withCredentials off: the clients keep no cookie at all, like a
// browser that blocks the cookies of an embedded chat. The run has
// three phases:
//
//   connect   every client connects by polling and upgrades to websocket;
//   chat      every client sends --messages "chat" messages;
//   receive   every client receives every message of every client, which
//             needs the replicas' Redis adapter for clients on other replicas.
//
// stdout: one JSON summary (see summary() below), also on failure. Among
// other things it counts clients per replica (each replica greets its
// clients with its name), clients per cookie name held when the upgrade
// succeeded, and "Session ID unknown" answers to polling requests
// (sessionUnknown) and failed WebSocket upgrades (upgradeErrors).
// Exit status 0 only when every client connected, upgraded, received
// everything, and nothing went wrong on the way (no errors at all).

const { parseArgs } = require('node:util');
const { io } = require('socket.io-client');

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    path: { type: 'string', default: '/socket.io/' },
    clients: { type: 'string', default: '50' },
    messages: { type: 'string', default: '10' },
    timeout: { type: 'string', default: '40000' },
    'no-cookies': { type: 'boolean', default: false },
  },
});
if (!args.url) {
  process.stderr.write('clients.js: --url is required\n');
  process.exit(2);
}

const N = Number(args.clients);
const M = Number(args.messages);
const started = Date.now();
const deadline = started + Number(args.timeout);
const maxErrorsListed = 100;

const errors = [];
let errorCount = 0;
let sessionUnknown = 0;
let upgradeErrors = 0;
let phase = 'connect';
const phaseMs = {};

function record(client, kind, message) {
  errorCount++;
  if (errors.length < maxErrorsListed) {
    errors.push({ client: client.index, kind, message, phase, atMs: Date.now() - started });
  }
}

// sessionUnknownIn reports whether a transport error is engine.io's answer
// to a request for a session this replica does not have: HTTP 400 with
// {"code":1,"message":"Session ID unknown"}.
function sessionUnknownIn(err) {
  const body = err && err.context && typeof err.context.responseText === 'string' ? err.context.responseText : '';
  return body.includes('Session ID unknown');
}

function describe(err) {
  if (!err) return String(err);
  let s = err.message || String(err);
  if (err.description !== undefined) s += ` (status ${err.description})`;
  const body = err.context && typeof err.context.responseText === 'string' ? err.context.responseText : '';
  if (body) s += ` body=${body.slice(0, 200)}`;
  return s;
}

// senderReplicas[i] is the set of replicas that tagged client i's messages.
const senderReplicas = Array.from({ length: N }, () => new Set());

function watchEngine(client, engine) {
  engine.on('upgrade', (transport) => {
    client.upgraded = true;
    client.transport = transport.name;
    // engine.io-client's per-connection jar (Node only, with withCredentials).
    const jar = engine._cookieJar;
    client.cookies = jar ? [...jar.cookies].map(([name]) => name) : [];
  });
  engine.on('upgradeError', (err) => {
    upgradeErrors++;
    record(client, 'upgradeError', describe(err));
  });
  engine.on('close', (reason, desc) => {
    if (client.closing) return;
    if (sessionUnknownIn(desc)) sessionUnknown++;
    record(client, 'engineClose', `${reason}: ${describe(desc)}`);
  });
}

function newClient(index) {
  const client = {
    index,
    replica: null,
    connects: 0,
    upgraded: false,
    transport: null,
    cookies: [],
    closing: false,
    seen: new Set(),
    sent: 0,
  };
  const socket = io(args.url, {
    path: args.path,
    forceNew: true, // one Manager, engine and cookie jar per client
    withCredentials: !args['no-cookies'],
    transports: ['polling', 'websocket'],
    upgrade: true,
    reconnectionDelay: 200,
    reconnectionDelayMax: 1000,
  });
  client.socket = socket;
  // The Manager opens a new engine (and so a new cookie jar) per attempt.
  socket.io.on('open', () => watchEngine(client, socket.io.engine));
  socket.on('connect', () => {
    client.connects++;
    if (client.connects > 1) record(client, 'reconnect', `connected again (${client.connects})`);
  });
  socket.on('connect_error', (err) => record(client, 'connect_error', describe(err)));
  socket.on('disconnect', (reason) => {
    if (!client.closing) record(client, 'disconnect', reason);
  });
  socket.on('hello', (msg) => {
    client.replica = msg.replica;
  });
  socket.on('chat', (msg) => {
    if (typeof msg.from === 'number' && msg.from >= 0 && msg.from < N) senderReplicas[msg.from].add(msg.replica);
    const key = `${msg.from}:${msg.seq}`;
    if (client.seen.has(key)) record(client, 'duplicate', `message ${key} received twice`);
    client.seen.add(key);
  });
  return client;
}

function summary(clients, timedOut) {
  const replicas = {};
  const cookies = {};
  for (const c of clients) {
    const r = c.replica || 'none';
    replicas[r] = (replicas[r] || 0) + 1;
    for (const name of c.cookies) cookies[name] = (cookies[name] || 0) + 1;
  }
  // A sender whose messages were tagged by a replica other than its own, or
  // by more than one, was moved mid-session.
  let movedSenders = 0;
  for (const c of clients) {
    const tags = senderReplicas[c.index];
    if (tags.size > 1 || (tags.size === 1 && !tags.has(c.replica))) movedSenders++;
  }
  const connected = clients.filter((c) => c.connects > 0).length;
  const upgraded = clients.filter((c) => c.upgraded && c.transport === 'websocket').length;
  const received = clients.reduce((n, c) => n + c.seen.size, 0);
  const complete = clients.filter((c) => c.seen.size === N * M).length;
  const s = {
    url: args.url,
    clients: N,
    messagesPerClient: M,
    connected,
    upgraded,
    sent: clients.reduce((n, c) => n + c.sent, 0),
    received,
    expectedReceived: N * N * M,
    complete,
    replicas,
    cookies,
    movedSenders,
    sessionUnknown,
    upgradeErrors,
    errorCount,
    errors,
    phase,
    phaseMs,
    timedOut,
    durationMs: Date.now() - started,
  };
  s.ok = !timedOut && errorCount === 0 && connected === N && upgraded === N && complete === N && movedSenders === 0;
  return s;
}

function until(cond) {
  return new Promise((resolve) => {
    const tick = () => {
      if (cond()) return resolve(true);
      if (Date.now() > deadline) return resolve(false);
      setTimeout(tick, 20);
    };
    tick();
  });
}

async function main() {
  const clients = Array.from({ length: N }, (_, i) => newClient(i));
  const ready = (c) => c.socket.connected && c.upgraded && c.socket.io.engine && c.socket.io.engine.transport.name === 'websocket';

  let ok = await until(() => clients.every(ready));
  phaseMs.connect = Date.now() - started;
  if (ok) {
    phase = 'chat';
    for (const c of clients) {
      for (let seq = 0; seq < M; seq++) {
        c.socket.emit('chat', { from: c.index, seq });
        c.sent++;
      }
    }
    phase = 'receive';
    ok = await until(() => clients.every((c) => c.seen.size >= N * M));
    phaseMs.receive = Date.now() - started - phaseMs.connect;
  }
  if (ok) phase = 'done';
  const s = summary(clients, !ok);
  for (const c of clients) {
    c.closing = true;
    c.socket.close();
  }
  process.stdout.write(JSON.stringify(s) + '\n', () => process.exit(s.ok ? 0 : 1));
}

main().catch((err) => {
  process.stderr.write(`clients.js: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
