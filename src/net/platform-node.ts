// Node side of the net layer: TCP, WebSockets, WebRTC (node-datachannel) and circuit relay
// transports; the peer key kept in `<data-dir>/peer.key` (libp2p protobuf, mode 0600) so a
// peer keeps its PeerId across restarts.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2';
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import { tcp } from '@libp2p/tcp';
import { webRTC } from '@libp2p/webrtc';
import { webSockets } from '@libp2p/websockets';
import type { PrivateKey } from '@libp2p/interface';
import type { Libp2pOptions } from 'libp2p';

export const PLATFORM: 'node' | 'browser' = 'node';

/**
 * When an ICO channel flushes its queue: once the event loop has run the callbacks of the I/O
 * it has in hand (the check phase), so the replies to several frames that arrived together,
 * and the messages a Raft Ready produces right after them, leave in one write. Not a timer:
 * it runs in the same loop turn. (Measured against a microtask: fewer frames and syscalls per
 * write at 1 and 16 clients, bench/net-hotpath.bench.ts.)
 */
export function scheduleFlush(flush: () => void): void {
  setImmediate(flush);
}

export function platformTransports(): NonNullable<Libp2pOptions['transports']> {
  return [tcp(), webSockets(), webRTC({ rtcConfiguration: { iceServers: [] } }), circuitRelayTransport({ reservationCompletionTimeout: 10_000 })];
}

/** Loopback by default: TCP and WebSocket on random ports, a relay reservation, WebRTC. */
export function defaultListen(host = '127.0.0.1'): string[] {
  return [`/ip4/${host}/tcp/0`, `/ip4/${host}/tcp/0/ws`, '/p2p-circuit', '/webrtc'];
}

export class KeyFileError extends Error {
  readonly code = 'KEY_FILE_INVALID';
  override name = 'KeyFileError';
}

export async function readKeyFile(path: string): Promise<PrivateKey> {
  const bytes = await readFile(path);
  try {
    const key = privateKeyFromProtobuf(bytes);
    if (key.type !== 'Ed25519') throw new KeyFileError(`${path} holds a ${key.type} key; HyperSync peers use Ed25519`);
    return key;
  } catch (e) {
    if (e instanceof KeyFileError) throw e;
    throw new KeyFileError(`${path} is not a libp2p private key file`);
  }
}

/** Writes atomically (temp file + rename) with owner-only permissions. */
export async function writeKeyFile(path: string, key: PrivateKey): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, privateKeyToProtobuf(key), { mode: 0o600 });
  await rename(tmp, path);
}

/** The peer key of a data dir, created on first use. */
export async function loadOrCreateKey(dataDir?: string): Promise<PrivateKey> {
  if (dataDir === undefined) return generateKeyPair('Ed25519');
  await mkdir(dataDir, { recursive: true });
  const path = join(dataDir, 'peer.key');
  try {
    return await readKeyFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const key = await generateKeyPair('Ed25519');
  await writeKeyFile(path, key);
  return key;
}
