// Child process of the crash test: appends receipts to a LevelDB log as fast as it can
// (several in flight, so group commit is exercised) and prints each index only after its
// append resolved, i.e. after the write was acknowledged as durable.
import { join } from 'node:path';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { crypto, seedFromLibp2pPrivateKey } from '../../src/crypto/index.ts';
import { loadOrCreateKey } from '../../src/net/platform-node.ts';
import { ReceiptLog } from '../../src/receipts/log.ts';
import { LevelStore } from '../../src/store/level.ts';

const dir = process.argv[2]!;
const key = await loadOrCreateKey(dir);
const log = await ReceiptLog.open(await LevelStore.open(join(dir, 'store')), { signer: crypto.createSigner(seedFromLibp2pPrivateKey(key)), peerId: peerIdFromPrivateKey(key).toString() });
process.stdout.write(`start ${log.size}\n`);
const IN_FLIGHT = 8;
let n = 0;
async function worker(): Promise<void> {
  for (;;) {
    const i = n++;
    const r = await log.append({ operator_id: 'kv.put', inputs: { key: `k${i}`, value: 'x'.repeat(i % 200) }, outputs: { ok: true } });
    process.stdout.write(`ack ${r.index}\n`);
  }
}
await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
