// The sandbox's one way out in `proxy` mode. The container has no network; this forwards
// 127.0.0.1:<port> inside it to the host's egress proxy, whose Unix socket is mounted read-only.
// Node, because every image that runs Claude Code has it.
'use strict';
const net = require('net');

const port = Number(process.env.CHANNELCODER_EGRESS_PORT || 3128);
const socketPath = process.env.CHANNELCODER_EGRESS_SOCKET || '/channelcoder/egress/proxy.sock';

const server = net.createServer({ allowHalfOpen: true }, (client) => {
  // Without it Nagle holds each small write (a request's body after its head, every
  // server-sent event) until the previous one is acknowledged: tens of ms per exchange.
  client.setNoDelay(true);
  const upstream = net.connect({ path: socketPath, allowHalfOpen: true });
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
server.on('error', (err) => {
  process.stderr.write(`channelcoder: the egress forwarder stopped: ${err.message}\n`);
  process.exit(1);
});
server.listen(port, '127.0.0.1');
