// The sandbox's one way out in `proxy` mode. The container has no network; this forwards
// 127.0.0.1:<port> inside it to the host's egress proxy, whose Unix socket is mounted read-only.
// Node, because every image that runs Claude Code has it.
//
// The proxy may start listening a moment after the container starts (a CLI run starts both at
// once): a connection whose socket is not there yet, or not listening yet, is tried again for
// a few seconds before the client is cut off. A kept-warm sandbox between turns has no proxy
// at all; its connections fail once that wait is over.
'use strict';
const net = require('net');

const port = Number(process.env.CHANNELCODER_EGRESS_PORT || 3128);
const socketPath = process.env.CHANNELCODER_EGRESS_SOCKET || '/channelcoder/egress/proxy.sock';
const WAIT_MS = 5000;
const RETRY_MS = 25;

function relay(client, deadline) {
  if (client.destroyed) {
    return;
  }
  const upstream = net.connect({ path: socketPath, allowHalfOpen: true });
  upstream.once('error', (err) => {
    if ((err.code === 'ENOENT' || err.code === 'ECONNREFUSED') && Date.now() < deadline) {
      setTimeout(() => relay(client, deadline), RETRY_MS);
    } else {
      client.destroy();
    }
  });
  upstream.once('connect', () => {
    if (client.destroyed) {
      upstream.destroy();
      return;
    }
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.pipe(upstream);
    upstream.pipe(client);
    for (const socket of [client, upstream]) {
      socket.on('error', end);
      socket.on('close', end);
    }
  });
}

const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => {
  // Without it Nagle holds each small write (a request's body after its head, every
  // server-sent event) until the previous one is acknowledged: tens of ms per exchange.
  client.setNoDelay(true);
  client.on('error', () => client.destroy());
  relay(client, Date.now() + WAIT_MS);
});
server.on('error', (err) => {
  process.stderr.write(`channelcoder: the egress forwarder stopped: ${err.message}\n`);
  process.exit(1);
});
server.listen(port, '127.0.0.1');
