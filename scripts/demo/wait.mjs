// Bounded readiness probe for scripts/demo.sh (Node's own modules only).
//
//   node scripts/demo/wait.mjs <what> <target> <timeout_seconds> [pid]
//
// target:
//   http://host:port/path   ready once it answers 2xx/3xx/4xx without redirects followed
//                           (5xx and connection errors mean "not yet")
//   routed:http://...       ready once Traefik answers with anything but its own
//                           "404 page not found" (its file provider loads after it listens)
//   redis://host:port       ready once PING answers +PONG
// pid: fail at once if this process has exited meanwhile.
// Exit 0 when ready; 1 with the last error after the timeout.

import net from 'node:net';

const [what, target, timeoutArg, pidArg] = process.argv.slice(2);
if (!what || !target || !timeoutArg) {
  console.error('usage: node wait.mjs <what> <target> <timeout_seconds> [pid]');
  process.exit(2);
}
const deadline = Date.now() + Number(timeoutArg) * 1000;
const pid = pidArg ? Number(pidArg) : undefined;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function alive(p) {
  try {
    process.kill(p, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

async function probeHttp(url, routed) {
  const response = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(2000) });
  const body = await response.text();
  if (routed && response.status === 404 && body.trim() === '404 page not found') {
    throw new Error('Traefik has not loaded its routers yet');
  }
  if (response.status >= 500) throw new Error(`HTTP ${response.status}: ${body.slice(0, 200)}`);
  return response.status;
}

function probeRedis(url) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostname, port: Number(port) || 6379 });
    let data = '';
    const fail = (err) => {
      socket.destroy();
      reject(err);
    };
    socket.setTimeout(2000, () => fail(new Error('no answer to PING')));
    socket.on('error', fail);
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      data += chunk;
      if (data.includes('\r\n')) {
        socket.end();
        if (data.startsWith('+PONG')) resolve('PONG');
        else reject(new Error(`PING answered ${JSON.stringify(data.trim())}`));
      }
    });
  });
}

let last = 'not tried';
for (;;) {
  if (pid !== undefined && !alive(pid)) {
    console.error(`${what} exited while starting (last probe: ${last})`);
    process.exit(1);
  }
  try {
    if (target.startsWith('redis://')) await probeRedis(target);
    else if (target.startsWith('routed:')) await probeHttp(target.slice('routed:'.length), true);
    else await probeHttp(target, false);
    process.exit(0);
  } catch (err) {
    last = err.cause?.code || err.message || String(err);
  }
  if (Date.now() >= deadline) {
    console.error(`${what} was not ready within ${timeoutArg} s at ${target.replace(/^routed:/, '')} (last error: ${last})`);
    process.exit(1);
  }
  await sleep(200);
}
