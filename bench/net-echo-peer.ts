// Child process of the net bench: a peer that echoes every STATE_SYNC back to its sender.
// Exits on SIGTERM or when the bench's end of stdin closes (no orphan if the bench is killed).
// argv: <relay multiaddr> <cluster> <clusterPublicKey b64url> <allowlist csv> <join token param>
import { startPeer } from '../src/net/index.ts';
import { base64urlDecode } from '../src/crypto/index.ts';
import { decodeJoinTokenParam } from '../src/ico/admission.ts';

const [relay, cluster, key, allow, token] = process.argv.slice(2) as [string, string, string, string, string];
const peer = await startPeer({
  cluster,
  roles: ['voter'],
  relays: [relay],
  allowlist: allow.split(','),
  clusterPublicKey: base64urlDecode(key),
  joinToken: decodeJoinTokenParam(token),
  listen: ['/ip4/127.0.0.1/tcp/0', '/p2p-circuit', '/webrtc'],
});
peer.on('ico:in', (e) => {
  if (e.envelope.type === 'STATE_SYNC') void peer.send(e.envelope.sender, 'STATE_SYNC', { echo: e.envelope.payload['n'] ?? null }).catch(() => undefined);
});
process.stdout.write(`${JSON.stringify({ type: 'ready', peerId: peer.peerId, multiaddrs: peer.multiaddrs() })}\n`);
const stop = (): void => void peer.stop().then(() => process.exit(0));
process.once('SIGTERM', stop);
// Our stdin is a pipe from the bench: when the bench dies, it closes, and we go too.
process.stdin.once('end', stop);
process.stdin.once('close', stop);
process.stdin.resume();
