// A CONSENSUS (or PBFT) envelope the transport refuses as over the frame limit is a packing bug on the
// sending side, not a passing link fault: the runtime must say so at warn, where an operator sees
// it (a debug line once hid a leader re-sending an oversized snapshot window forever).
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { logSendFailure, type EngineTransport } from '../../src/consensus/ports.ts';
import { RaftRuntime } from '../../src/consensus/raft/runtime/runtime.ts';
import { crypto, peerIdFromPublicKeyBytes } from '../../src/crypto/index.ts';
import { MessageTooLargeError, NotConnectedError } from '../../src/net/index.ts';
import { mustSyncReceipts, Replica } from '../../src/replica/replica.ts';
import { MemoryStore } from '../../src/store/memory.ts';

async function sendFailureLines(error: Error): Promise<Array<{ level: number; msg: string }>> {
  const lines: Array<{ level: number; msg: string }> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as { level: number; msg: string });
      done();
    },
  });
  const signers = [crypto.createSigner(crypto.randomBytes(32)), crypto.createSigner(crypto.randomBytes(32))];
  const [voter, learner] = signers.map((s) => peerIdFromPublicKeyBytes(s.publicKey)) as [string, string];
  let transportSent: () => void = () => undefined;
  const sent = new Promise<void>((resolve) => {
    transportSent = resolve;
  });
  const transport: EngineTransport = {
    send() {
      transportSent();
      return Promise.reject(error);
    },
    onMessage: () => () => undefined,
  };
  const replica = await Replica.open({ store: new MemoryStore(), signer: signers[0]!, peerId: voter, syncReceipts: mustSyncReceipts(true) });
  const rt = await RaftRuntime.open({ id: voter, transport, store: new MemoryStore(), replica, bootstrap: { voters: [voter], learners: [learner] }, tickMs: 10, logger: pino({ level: 'debug' }, sink) });
  await rt.start();
  await sent;
  // The rejection is handled on a later turn.
  await new Promise((r) => setTimeout(r, 50));
  await rt.close();
  return lines.filter((l) => /CONSENSUS/.test(l.msg));
}

test('an envelope over the frame limit is logged at warn; an ordinary send failure stays at debug', async () => {
  const tooLarge = await sendFailureLines(new MessageTooLargeError('a 2000000-byte envelope exceeds the 1048576-byte frame limit'));
  assert.ok(tooLarge.some((l) => l.level === 40 && /over the frame limit/.test(l.msg)), JSON.stringify(tooLarge));
  const notConnected = await sendFailureLines(new NotConnectedError('not connected'));
  assert.ok(notConnected.length > 0, 'the failure is logged');
  assert.ok(notConnected.every((l) => l.level === 20), JSON.stringify(notConnected));
});

test('logSendFailure, which the Raft and PBFT runtimes share: warn for NET_MESSAGE_TOO_LARGE, debug otherwise', () => {
  const seen: Array<[string, string]> = [];
  const log = { warn: (_o: object, m: string) => void seen.push(['warn', m]), debug: (_o: object, m: string) => void seen.push(['debug', m]) };
  logSendFailure(log, 'PBFT', 'peer', new MessageTooLargeError('too big'));
  logSendFailure(log, 'PBFT', 'peer', new NotConnectedError('gone'));
  logSendFailure(log, 'PBFT', 'peer', 'not an error');
  assert.deepEqual(seen, [['warn', 'PBFT envelope refused: over the frame limit'], ['debug', 'PBFT send failed'], ['debug', 'PBFT send failed']]);
});
