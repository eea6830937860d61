'use strict';

// One replica of a Socket.IO chat, as in the seed app: sessions start with
// HTTP long-polling and upgrade to a WebSocket, and their state lives in
// this process only. Replicas share broadcasts through Redis
// (@socket.io/redis-adapter), so clients on different replicas see each
// other's messages.
//
//   node server.js --port 3001 --redis redis://127.0.0.1:6379 --name a [--peers 2]
//
// stdout: "ready PORT" once listening and subscribed to Redis, and (when
// --peers is given) once that many replicas are subscribed.
// stderr: one "connection_error ..." line for every request engine.io
// rejects, e.g. code=1 message="Session ID unknown" when a polling request
// or a WebSocket upgrade reaches a replica that did not create its session.
// The Go test counts these lines.

const http = require('node:http');
const { parseArgs } = require('node:util');
const { Server } = require('socket.io');
const { createAdapter } = require('@socket.io/redis-adapter');
const { createClient } = require('redis');

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.PORT || '3000' },
    host: { type: 'string', default: '127.0.0.1' },
    redis: { type: 'string', default: process.env.REDIS_URL || 'redis://127.0.0.1:6379' },
    name: { type: 'string', default: process.env.REPLICA || `replica-${process.pid}` },
    peers: { type: 'string', default: '1' },
  },
});

const replica = args.name;

function log(line) {
  process.stderr.write(`${line} replica=${replica}\n`);
}

async function waitForPeers(io, want) {
  const deadline = Date.now() + 15000;
  for (;;) {
    const n = await io.of('/').adapter.serverCount();
    if (n >= want) return n;
    if (Date.now() > deadline) throw new Error(`only ${n} of ${want} replicas subscribed to redis`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function main() {
  const pub = createClient({ url: args.redis });
  const sub = pub.duplicate();
  pub.on('error', (err) => log(`redis_error client=pub err=${JSON.stringify(String(err))}`));
  sub.on('error', (err) => log(`redis_error client=sub err=${JSON.stringify(String(err))}`));
  await Promise.all([pub.connect(), sub.connect()]);

  const httpServer = http.createServer();
  const io = new Server(httpServer, {
    transports: ['polling', 'websocket'],
    adapter: createAdapter(pub, sub),
  });

  let sessionUnknown = 0;
  io.engine.on('connection_error', (err) => {
    const req = err.req || {};
    const query = req._query || {};
    if (err.code === 1) sessionUnknown++;
    log(
      `connection_error code=${err.code} message=${JSON.stringify(err.message)}` +
        ` method=${req.method} transport=${query.transport} sid=${query.sid}` +
        ` upgrade=${Boolean(req.headers && req.headers.upgrade)}`,
    );
  });

  io.on('connection', (socket) => {
    socket.emit('hello', { replica, id: socket.id });
    // Tag every message with the replica that received it from its sender;
    // io.emit reaches this replica's clients directly and the other
    // replicas' clients through Redis.
    socket.on('chat', (msg) => io.emit('chat', { ...msg, replica }));
  });

  await new Promise((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(Number(args.port), args.host, resolve);
  });
  await waitForPeers(io, Number(args.peers));
  process.stdout.write(`ready ${httpServer.address().port}\n`);

  const stop = (signal) => {
    log(`stopping signal=${signal} sessionUnknown=${sessionUnknown}`);
    io.close();
    Promise.allSettled([pub.quit(), sub.quit()]).finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err) => {
  log(`fatal err=${JSON.stringify(String(err && err.stack ? err.stack : err))}`);
  process.exit(1);
});
