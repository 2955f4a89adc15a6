// Browser side of the net layer: WebSockets (to relays), WebRTC (to other peers, signalled
// through the relay) and circuit relay. The peer key lives in IndexedDB; each open tab
// claims its own identity slot with a Web Lock, so two tabs never share a PeerId while a
// reloaded tab gets its old one back.
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2';
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import { webRTC } from '@libp2p/webrtc';
import { webSockets } from '@libp2p/websockets';
import type { PrivateKey } from '@libp2p/interface';
import { openDB } from 'idb';
import type { Libp2pOptions } from 'libp2p';

export const PLATFORM: 'node' | 'browser' = 'browser';

/** When an ICO channel flushes its queue: browsers have no check phase, so at the end of the current task. */
export function scheduleFlush(flush: () => void): void {
  queueMicrotask(flush);
}

/** Identity slots one browser profile may hold (tabs open at once). */
export const MAX_IDENTITY_SLOTS = 16;

export function platformTransports(): NonNullable<Libp2pOptions['transports']> {
  return [webSockets(), webRTC({ rtcConfiguration: { iceServers: [] } }), circuitRelayTransport({ reservationCompletionTimeout: 10_000 })];
}

export function defaultListen(): string[] {
  return ['/p2p-circuit', '/webrtc'];
}

/** Holds the Web Lock of `name` for the life of the page; resolves false if it is taken. */
function claimSlot(name: string): Promise<boolean> {
  const locks = (globalThis.navigator as Navigator | undefined)?.locks;
  if (locks === undefined) return Promise.resolve(name.endsWith('-0'));
  return new Promise((resolve) => {
    void locks.request(name, { ifAvailable: true }, (lock) => {
      if (lock === null) {
        resolve(false);
        return undefined;
      }
      resolve(true);
      // Never settles: the lock is released when the tab goes away.
      return new Promise<never>(() => undefined);
    });
  });
}

export async function loadOrCreateKey(): Promise<PrivateKey> {
  const db = await openDB('hypersync-identity', 1, {
    upgrade(database) {
      database.createObjectStore('keys');
    },
  });
  try {
    for (let slot = 0; slot < MAX_IDENTITY_SLOTS; slot++) {
      if (!(await claimSlot(`hypersync-identity-${slot}`))) continue;
      const stored: unknown = await db.get('keys', `peer-${slot}`);
      if (stored instanceof Uint8Array) return privateKeyFromProtobuf(stored);
      const key = await generateKeyPair('Ed25519');
      await db.put('keys', privateKeyToProtobuf(key), `peer-${slot}`);
      return key;
    }
    // Every slot is in use: this tab gets a fresh identity that is not kept.
    return await generateKeyPair('Ed25519');
  } finally {
    db.close();
  }
}
