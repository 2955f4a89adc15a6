// Net bench: ICO round trip between two processes over a real libp2p TCP connection
// (Noise + yamux, signed envelopes both ways), and WebRTC connect time between two Node
// processes signalled through the relay, and a plain circuit relay v2 dial. Loopback only,
// bounded counts.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { multiaddr } from '@multiformats/multiaddr';
import type { Libp2p } from 'libp2p';
import { base64urlEncode, crypto } from '../src/crypto/index.ts';
import { createJoinToken, decodeJoinTokenParam, encodeJoinTokenParam } from '../src/ico/admission.ts';
import { startPeer } from '../src/net/index.ts';
import { startRelay } from '../relay/relay.ts';
import { percentile, type BenchRow } from './table.ts';

const ROUND_TRIPS = 2000;
const WEBRTC_DIALS = 8;
const RELAY_DIALS = 8;

export async function run(): Promise<BenchRow[]> {
  const clusterSigner = crypto.createSigner(crypto.randomBytes(32));
  const cluster = 'bench';
  const key = base64urlEncode(clusterSigner.publicKey);
  const token = encodeJoinTokenParam(createJoinToken({ clusterSigner, cluster, peer: '*', role: 'browser', ttlMs: 3_600_000 }));
  const relay = await startRelay({ config: { cluster, clusterPublicKey: key, allowlist: [] }, port: 0, httpPort: 0 });
  const relayAddr = relay.multiaddrs[0]!;
  const child = spawn(process.execPath, [join(import.meta.dirname, 'net-echo-peer.ts'), relayAddr, cluster, key, relay.peerId, token], { stdio: ['pipe', 'pipe', 'ignore'] });
  const rows: BenchRow[] = [];
  try {
    const ready = await new Promise<{ peerId: string; multiaddrs: string[] }>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('echo peer not ready')), 30_000);
      createInterface({ input: child.stdout! }).once('line', (l) => {
        clearTimeout(t);
        resolve(JSON.parse(l) as { peerId: string; multiaddrs: string[] });
      });
    });
    const me = await startPeer({ cluster, roles: ['voter'], relays: [relayAddr], allowlist: [relay.peerId], clusterPublicKey: clusterSigner.publicKey, joinToken: decodeJoinTokenParam(token), listen: ['/ip4/127.0.0.1/tcp/0', '/p2p-circuit', '/webrtc'] });
    const libp2p = (me as unknown as { libp2p: Libp2p }).libp2p;
    try {
      const tcpAddr = ready.multiaddrs.find((a) => a.includes('/tcp/') && !a.includes('/ws') && !a.includes('p2p-circuit'))!;
      await libp2p.dial(multiaddr(tcpAddr));
      await waitFor(() => me.peers().some((p) => p.peerId === ready.peerId && p.state === 'established'), 20_000);
      // Round trips: send n, wait for its echo.
      const samples: number[] = [];
      let pending: { n: number; resolve: () => void } | undefined;
      me.on('ico:in', (e) => {
        if (pending !== undefined && e.envelope.payload['echo'] === pending.n) pending.resolve();
      });
      for (let n = 0; n < ROUND_TRIPS; n++) {
        const t0 = performance.now();
        await new Promise<void>((resolve) => {
          pending = { n, resolve };
          void me.send(ready.peerId, 'STATE_SYNC', { n });
        });
        samples.push(performance.now() - t0);
      }
      const p50 = percentile(samples.slice(100), 50);
      const p99 = percentile(samples.slice(100), 99);
      rows.push({ suite: 'net', name: 'ICO round trip Node↔Node (TCP, signed both ways) p50', value: p50, unit: 'ms', note: `${ROUND_TRIPS} round trips` });
      rows.push({ suite: 'net', name: 'ICO round trip Node↔Node p99', value: p99, unit: 'ms' });
      rows.push({ suite: 'net', name: 'ICO round trips per second (1 in flight)', value: 1000 / (samples.reduce((a, b) => a + b, 0) / samples.length), unit: 'rt/s' });

      // WebRTC connect: hang up, then dial the echo peer's WebRTC address via the relay.
      const connects: number[] = [];
      const target = multiaddr(`${relayAddr}/p2p-circuit/webrtc/p2p/${ready.peerId}`);
      for (let i = 0; i < WEBRTC_DIALS; i++) {
        const t0 = performance.now();
        try {
          // force: a new connection even though the TCP one is open.
          const conn = await libp2p.dial(target, { signal: AbortSignal.timeout(15_000), force: true });
          if (conn.remoteAddr.toString().includes('/webrtc')) connects.push(performance.now() - t0);
          await conn.close().catch(() => undefined);
        } catch {
          // Counted as a failed attempt below.
        }
      }
      rows.push({
        suite: 'net', name: 'WebRTC connect Node↔Node via relay p50', value: percentile(connects, 50), unit: 'ms',
        note: `${connects.length}/${WEBRTC_DIALS} dials succeeded; DESIGN anchor 76 ms–1.4 s`,
      });
      rows.push({ suite: 'net', name: 'WebRTC connect Node↔Node via relay max', value: Math.max(...connects), unit: 'ms', note: `min ${Math.min(...connects).toFixed(0)} ms` });

      // The hop every first contact of a tab takes: a circuit through the relay.
      const relayed: number[] = [];
      const circuit = multiaddr(`${relayAddr}/p2p-circuit/p2p/${ready.peerId}`);
      for (let i = 0; i < RELAY_DIALS; i++) {
        const t0 = performance.now();
        try {
          const conn = await libp2p.dial(circuit, { signal: AbortSignal.timeout(10_000), force: true });
          relayed.push(performance.now() - t0);
          await conn.close().catch(() => undefined);
        } catch {
          // Counted as a failed attempt below.
        }
      }
      rows.push({
        suite: 'net', name: 'circuit relay v2 dial Node→relay→Node p50', value: percentile(relayed, 50), unit: 'ms',
        note: `${relayed.length}/${RELAY_DIALS} dials succeeded; DESIGN anchor 66–177 ms`,
      });
    } finally {
      await me.stop();
    }
  } finally {
    child.kill('SIGTERM');
    await relay.stop();
  }
  return rows;
}

async function waitFor(pred: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}
