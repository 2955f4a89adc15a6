// The far peer of the sync bench, its own process: opens a LevelDB document store the bench
// built, starts a libp2p peer on loopback TCP that admits only the bench's peer, and serves
// sync sessions. Prints {peerId, multiaddrs} once ready; `cpu` on stdin prints its CPU time so
// far (user+system µs); `stop` (or stdin closing) ends it.
import { createInterface } from 'node:readline';
import { privateKeyFromProtobuf } from '@libp2p/crypto/keys';
import { crypto, hexDecode, seedFromLibp2pPrivateKey } from '../src/crypto/index.ts';
import { startPeer } from '../src/net/peer.ts';
import { LevelStore } from '../src/store/level.ts';
import { policiesWith } from '../src/sync/policy.ts';
import { startSyncService, type SyncService } from '../src/sync/service.ts';

const [dbDir, keyHex, allowed, cluster, clusterKeyHex] = process.argv.slice(2) as [string, string, string, string, string];
process.env['HYPERSYNC_LOG'] ??= 'warn';
const privateKey = privateKeyFromProtobuf(hexDecode(keyHex));
const store = await LevelStore.open(dbDir);
let sync: SyncService | undefined;
const peer = await startPeer({
  cluster, roles: ['voter'], relays: [], allowlist: [allowed], clusterPublicKey: hexDecode(clusterKeyHex), privateKey,
  listen: ['/ip4/127.0.0.1/tcp/0'], helloState: () => sync?.summary() ?? null,
});
sync = await startSyncService({ peer, store, signer: crypto.createSigner(seedFromLibp2pPrivateKey(privateKey)), policies: policiesWith(), syncOnConnect: false, antiEntropyMs: 3_600_000, binary: true });
process.stdout.write(`${JSON.stringify({ peerId: peer.peerId, multiaddrs: peer.multiaddrs() })}\n`);
const stop = async (): Promise<void> => {
  await sync?.stop();
  await peer.stop();
  await store.close();
  process.exit(0);
};
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line === 'cpu') {
    const u = process.cpuUsage();
    process.stdout.write(`${JSON.stringify({ cpuUs: u.user + u.system })}\n`);
  } else if (line === 'stop') void stop();
}).on('close', () => void stop());
