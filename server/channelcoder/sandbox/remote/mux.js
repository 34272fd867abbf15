// The sandbox's one way out in `proxy` mode on a remote engine. The host's egress proxy is on
// another machine, so no socket of it can be mounted: this listens on 127.0.0.1:<port> inside
// the container, as the local forwarder does, and carries every connection over one channel
// the host opens with an exec (`node mux.js --pipe`, whose stdin and stdout are that channel).
// Frames: type (1 open, 2 data, 3 end, 4 close, 5 ready), connection id, length, all
// big-endian; the payload follows. Connections made before the first channel wait for it; once a
// channel has come and gone (a warm container between two turns), none is taken until the next.
'use strict';
const net = require('net');

const port = Number(process.env.CHANNELCODER_EGRESS_PORT || 3128);
const muxPath = process.env.CHANNELCODER_EGRESS_MUX || '/tmp/channelcoder-egress.sock';
const OPEN = 1, DATA = 2, END = 3, CLOSE = 4, READY = 5;

function frame(type, id, payload) {
  const head = Buffer.alloc(9);
  head.writeUInt8(type, 0);
  head.writeUInt32BE(id, 1);
  head.writeUInt32BE(payload ? payload.length : 0, 5);
  return payload ? Buffer.concat([head, payload]) : head;
}

function parser(onFrame) {
  let buffered = Buffer.alloc(0);
  return (chunk) => {
    buffered = Buffer.concat([buffered, chunk]);
    while (buffered.length >= 9) {
      const length = buffered.readUInt32BE(5);
      if (buffered.length < 9 + length) break;
      onFrame(buffered.readUInt8(0), buffered.readUInt32BE(1), buffered.subarray(9, 9 + length));
      buffered = buffered.subarray(9 + length);
    }
  };
}

function pipe() {
  const started = Date.now();
  const attempt = () => {
    const channel = net.connect({ path: muxPath });
    channel.on('connect', () => {
      process.stdin.pipe(channel);
      channel.pipe(process.stdout);
      channel.on('close', () => process.exit(0));
      process.stdin.on('end', () => process.exit(0));
    });
    channel.on('error', (err) => {
      if (Date.now() - started > 10000) {
        process.stderr.write(`channelcoder: no egress forwarder: ${err.message}\n`);
        process.exit(1);
      }
      setTimeout(attempt, 50);
    });
  };
  attempt();
}

function serve() {
  const connections = new Map();
  let channel = null;
  let hadChannel = false;
  let pending = [];
  let next = 1;
  const send = (data) => (channel ? channel.write(data) : pending.push(data));

  net.createServer({ allowHalfOpen: true }, (client) => {
    client.setNoDelay(true); // else Nagle holds each small write for a delayed ACK (~40 ms)
    if (!channel && hadChannel) {
      client.destroy();
      return;
    }
    const id = next++;
    connections.set(id, client);
    send(frame(OPEN, id));
    client.on('data', (data) => send(frame(DATA, id, data)));
    client.on('end', () => send(frame(END, id)));
    const gone = () => {
      if (connections.delete(id)) send(frame(CLOSE, id));
    };
    client.on('error', gone);
    client.on('close', gone);
  }).listen(port, '127.0.0.1');

  net.createServer((socket) => {
    if (channel) channel.destroy();
    channel = socket;
    hadChannel = true;
    socket.write(frame(READY, 0));
    for (const data of pending) socket.write(data);
    pending = [];
    socket.on('data', parser((type, id, payload) => {
      const client = connections.get(id);
      if (!client) return;
      if (type === DATA) client.write(payload);
      else if (type === END) client.end();
      else if (type === CLOSE) {
        connections.delete(id);
        client.destroy();
      }
    }));
    const lost = () => {
      if (channel !== socket) return;
      channel = null;
      for (const client of connections.values()) client.destroy();
      connections.clear();
    };
    socket.on('error', lost);
    socket.on('close', lost);
  }).listen(muxPath);
}

if (process.argv.includes('--pipe')) pipe();
else serve();
