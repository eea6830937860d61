'use strict';
// A tiny Socket.IO v5 / Engine.IO v4 client: the session opens with HTTP
// long-polling and upgrades to a WebSocket, as the official client does.
// Only the default namespace, text packets and acknowledgements.
//
//   const s = new TinySocket('/socket.io/', {nick: 'ann'});
//   s.on('message', (m) => ...); s.emit('message', {text: 'hi'}, (reply) => ...);
//   s.onstate = (state) => ...  // 'polling', 'websocket', 'closed'
class TinySocket {
  constructor(path, auth) {
    this.path = path;
    this.auth = auth || {};
    this.handlers = {};
    this.acks = new Map();
    this.nextAck = 0;
    this.sid = null;
    this.ws = null;
    this.state = 'closed';
    this.onstate = () => {};
    this.postChain = Promise.resolve();
    this.polling = false;
  }
  on(ev, fn) { this.handlers[ev] = fn; }
  setState(s) { this.state = s; this.onstate(s); }

  url(transport) {
    let u = `${this.path}?EIO=4&transport=${transport}`;
    if (this.sid) u += `&sid=${encodeURIComponent(this.sid)}`;
    if (transport === 'polling') u += `&t=${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
    return u;
  }

  async open() {
    this.sid = null;
    const r = await fetch(this.url('polling'), { credentials: 'same-origin' });
    if (!r.ok) throw new Error(`handshake: HTTP ${r.status}`);
    const body = await r.text();
    if (body[0] !== '0') throw new Error(`handshake: unexpected ${body.slice(0, 40)}`);
    const hs = JSON.parse(body.slice(1));
    this.sid = hs.sid;
    this.setState('polling');
    this.send('40' + JSON.stringify(this.auth));
    this.pollLoop();
    if ((hs.upgrades || []).includes('websocket')) this.upgrade();
  }

  async pollLoop() {
    this.polling = true;
    while (this.state === 'polling' && !this.stopPolling) {
      let body;
      try {
        const r = await fetch(this.url('polling'), { credentials: 'same-origin' });
        if (!r.ok) throw new Error(`poll: HTTP ${r.status}`);
        body = await r.text();
      } catch (e) {
        this.close(String(e));
        break;
      }
      for (const p of body.split('\x1e')) this.onPacket(p);
    }
    this.polling = false;
    if (this.pollStopped) this.pollStopped();
  }

  upgrade() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${proto}//${location.host}${this.url('websocket')}`);
    ws.onopen = () => ws.send('2probe');
    ws.onmessage = (ev) => {
      if (ev.data === '3probe' && this.ws !== ws) {
        // Wait for the pending poll to return (the server ends it), then
        // switch: from now on every packet goes over the WebSocket.
        this.stopPolling = true;
        const done = new Promise((res) => { this.pollStopped = res; });
        (this.polling ? done : Promise.resolve()).then(() => this.postChain).then(() => {
          ws.send('5');
          this.ws = ws;
          this.setState('websocket');
        });
        return;
      }
      this.onPacket(ev.data);
    };
    ws.onclose = () => { if (this.ws === ws) this.close('websocket closed'); };
  }

  send(packet) {
    if (this.ws) {
      this.ws.send(packet);
      return;
    }
    this.postChain = this.postChain.then(() =>
      fetch(this.url('polling'), { method: 'POST', body: packet, credentials: 'same-origin', headers: { 'Content-Type': 'text/plain;charset=UTF-8' } })
        .then((r) => { if (!r.ok) throw new Error(`send: HTTP ${r.status}`); })
        .catch((e) => this.close(String(e))));
  }

  emit(ev, data, ack) {
    let head = '42';
    if (ack) {
      const id = this.nextAck++;
      this.acks.set(id, ack);
      head += id;
    }
    this.send(head + JSON.stringify([ev, data]));
  }

  onPacket(p) {
    if (!p) return;
    switch (p[0]) {
      case '2': this.send('3' + p.slice(1)); return; // ping
      case '1': this.close('server closed'); return;
      case '4': this.onSocketPacket(p.slice(1)); return;
      default: return; // '3' pong, '6' noop
    }
  }

  onSocketPacket(p) {
    const type = p[0];
    let i = 1;
    while (i < p.length && p[i] >= '0' && p[i] <= '9') i++;
    const id = i > 1 ? Number(p.slice(1, i)) : null;
    const data = i < p.length ? JSON.parse(p.slice(i)) : null;
    if (type === '2' && Array.isArray(data)) {
      const fn = this.handlers[data[0]];
      if (fn) fn(...data.slice(1));
    } else if (type === '3' && id !== null && this.acks.has(id)) {
      const fn = this.acks.get(id);
      this.acks.delete(id);
      fn(...(data || []));
    } else if (type === '0' && this.handlers.connect) {
      this.handlers.connect(data);
    } else if (type === '4' && this.handlers.connect_error) {
      this.handlers.connect_error(data);
    } else if (type === '1') {
      this.close('namespace disconnect');
    }
  }

  close(reason) {
    if (this.state === 'closed') return;
    this.setState('closed');
    if (this.ws) { const ws = this.ws; this.ws = null; ws.close(); }
    if (this.handlers.disconnect) this.handlers.disconnect(reason);
  }
}
