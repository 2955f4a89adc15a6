// The crypto adapter compliance suite: one list of checks every adapter must pass against a
// reference adapter, with its own tiny assertions so it runs unchanged under node:test and
// inside browser pages (Chromium and Firefox, e2e/). Inputs are derived from a seed with the
// reference's sha256, so a failure names the seed and the case that replays it.
import { hexDecode, hexEncode } from './encoding.ts';
import type { CryptoAdapter } from './types.ts';

/** RFC 8032 section 7.1 known answers: tests 1, 2, 3 and SHA(abc). */
export const RFC8032_VECTORS: ReadonlyArray<{ name: string; seed: string; publicKey: string; message: string; signature: string }> = [
  {
    name: 'TEST 1 (empty message)',
    seed: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    publicKey: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    message: '',
    signature: 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    name: 'TEST 2 (one byte)',
    seed: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    publicKey: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    message: '72',
    signature: '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
  {
    name: 'TEST 3 (two bytes)',
    seed: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
    publicKey: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
    message: 'af82',
    signature: '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a',
  },
  {
    name: 'TEST SHA(abc) (64 bytes)',
    seed: '833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42',
    publicKey: 'ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf',
    message: 'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f',
    signature: 'dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704',
  },
];

/**
 * Edge cases from "Taming the many EdDSAs" (Chalkias, Garillot, Nikolaenko, SSR 2020; the
 * vectors of novifinancial/ed25519-speccheck, cases 0-9): small-order keys and R, mixed-order
 * points that only the cofactored equation accepts, S ≥ L, non-canonical R. Under the shared
 * rules (ed25519-rules.ts) only case 3, an ordinary signature, verifies.
 */
export const EDGE_CASE_VECTORS: ReadonlyArray<{ message: string; publicKey: string; signature: string; valid: boolean }> = [
  { message: '8c93255d71dcab10e8f379c26200f3c7bd5f09d9bc3068d3ef4edeb4853022b6', publicKey: 'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa', signature: 'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a0000000000000000000000000000000000000000000000000000000000000000', valid: false },
  { message: '9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79', publicKey: 'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa', signature: 'f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43a5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04', valid: false },
  { message: 'aebf3f2601a0c8c5d39cc7d8911642f740b78168218da8471772b35f9d35b9ab', publicKey: 'f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43', signature: 'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa8c4bd45aecaca5b24fb97bc10ac27ac8751a7dfe1baff8b953ec9f5833ca260e', valid: false },
  { message: '9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79', publicKey: 'cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d', signature: '9046a64750444938de19f227bb80485e92b83fdb4b6506c160484c016cc1852f87909e14428a7a1d62e9f22f3d3ad7802db02eb2e688b6c52fcd6648a98bd009', valid: true },
  { message: 'e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c', publicKey: 'cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d', signature: '160a1cb0dc9c0258cd0a7d23e94d8fa878bcb1925f2c64246b2dee1796bed5125ec6bc982a269b723e0668e540911a9a6a58921d6925e434ab10aa7940551a09', valid: false },
  { message: 'e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c', publicKey: 'cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d', signature: '21122a84e0b5fca4052f5b1235c80a537878b38f3142356b2c2384ebad4668b7e40bc836dac0f71076f9abe3a53f9c03c1ceeeddb658d0030494ace586687405', valid: false },
  { message: '85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40', publicKey: '442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623', signature: 'e96f66be976d82e60150baecff9906684aebb1ef181f67a7189ac78ea23b6c0e547f7690a0e2ddcd04d87dbc3490dc19b3b3052f7ff0538cb68afb369ba3a514', valid: false },
  { message: '85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40', publicKey: '442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623', signature: '8ce5b96c8f26d0ab6c47958c9e68b937104cd36e13c33566acd2fe8d38aa19427e71f98a473474f2f13f06f97c20d58cc3f54b8bd0d272f42b695dd7e89a8c22', valid: false },
  { message: 'fdaebc429f4a735932a160da1301080c13280eea8bc280d1b392c6b9e6ba3a5a', publicKey: 'f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43', signature: 'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f454d370c8d9fc323a41450f8d513eafeb5b0697390c1e505a0d4ddc71f566607', valid: false },
  { message: '84b698d39be126ff55fe45079e6c8bf64a0d7db6994560b4e96b7021eb39c1a1', publicKey: 'f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43', signature: 'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f084d5b99c2a9463d9c8bd5026916996984eeec87ddf1d3be329006ace1b37b09', valid: false },
];

/** Random inputs the equivalence check runs by default (the 1,000). */
export const EQUIVALENCE_INPUTS = 1000;
/** Longest random message, in bytes. */
const MAX_MESSAGE_BYTES = 2048;

export interface CryptoComplianceResult {
  name: string;
  ok: boolean;
  error?: string;
}

class CryptoComplianceFailure extends Error {
  override name = 'CryptoComplianceFailure';
}

function ok(cond: boolean, message: string): void {
  if (!cond) throw new CryptoComplianceFailure(message);
}

function same(a: Uint8Array, b: Uint8Array, message: string): void {
  const x = hexEncode(a);
  const y = hexEncode(b);
  ok(x === y, `${message}: ${x.slice(0, 32)}… ≠ ${y.slice(0, 32)}…`);
}

/** Deterministic bytes from (seed, label): the reference's sha256 in counter mode. */
function derive(reference: CryptoAdapter, seed: string, label: string, length: number): Uint8Array {
  const out = new Uint8Array(length);
  const enc = new TextEncoder();
  for (let block = 0, off = 0; off < length; block++, off += 32) {
    out.set(reference.sha256(enc.encode(`${seed}/${label}/${block}`)).subarray(0, Math.min(32, length - off)), off);
  }
  return out;
}

interface Case {
  name: string;
  run(): Promise<void>;
}

function cases(adapter: CryptoAdapter, reference: CryptoAdapter, seed: string, inputs: number): Case[] {
  return [
    {
      name: `agrees with ${reference.name} on ${inputs} random inputs (seed ${seed}): sha256, public keys, sync and async signatures, cross-verification, tampering`,
      async run() {
        for (let i = 0; i < inputs; i++) {
          const where = `input ${i} (seed ${seed})`;
          const key = derive(reference, seed, `key${i}`, 32);
          const length = i % 97 === 0 ? 0 : 1 + (derive(reference, seed, `len${i}`, 2).reduce((a, b) => a * 256 + b, 0) % MAX_MESSAGE_BYTES);
          const message = derive(reference, seed, `msg${i}`, length);
          same(adapter.sha256(message), reference.sha256(message), `${where}: sha256`);
          const a = adapter.createSigner(key);
          const r = reference.createSigner(key);
          same(a.publicKey, r.publicKey, `${where}: public key`);
          const expected = r.sign(message);
          same(a.sign(message), expected, `${where}: sign`);
          same(await a.signAsync(message), expected, `${where}: signAsync`);
          ok(adapter.verify(r.publicKey, message, expected), `${where}: verify of the reference's signature`);
          ok(await adapter.verifyAsync(r.publicKey, message, expected), `${where}: verifyAsync of the reference's signature`);
          ok(await adapter.verifyParallel(r.publicKey, message, expected), `${where}: verifyParallel of the reference's signature`);
          ok(reference.verify(a.publicKey, message, await a.signAsync(message)), `${where}: the reference verifies signAsync's signature`);
          const tampered = Uint8Array.from(expected);
          tampered[i % 64] = (tampered[i % 64] as number) ^ (1 << (i % 8));
          ok(!adapter.verify(r.publicKey, message, tampered), `${where}: verify accepted a tampered signature`);
          ok(!(await adapter.verifyAsync(r.publicKey, message, tampered)), `${where}: verifyAsync accepted a tampered signature`);
          ok(!(await adapter.verifyParallel(r.publicKey, message, tampered)), `${where}: verifyParallel accepted a tampered signature`);
          if (message.length > 0) {
            const other = Uint8Array.from(message);
            other[i % message.length] = (other[i % message.length] as number) ^ 1;
            ok(!(await adapter.verifyAsync(r.publicKey, other, expected)), `${where}: verifyAsync accepted another message`);
          }
        }
      },
    },
    {
      name: 'RFC 8032 known answers: public key, sign, signAsync, verify, verifyAsync',
      async run() {
        for (const v of RFC8032_VECTORS) {
          const signer = adapter.createSigner(hexDecode(v.seed));
          const message = hexDecode(v.message);
          const signature = hexDecode(v.signature);
          same(signer.publicKey, hexDecode(v.publicKey), `${v.name}: public key`);
          same(signer.sign(message), signature, `${v.name}: sign`);
          same(await signer.signAsync(message), signature, `${v.name}: signAsync`);
          ok(adapter.verify(signer.publicKey, message, signature), `${v.name}: verify`);
          ok(await adapter.verifyAsync(signer.publicKey, message, signature), `${v.name}: verifyAsync`);
        }
      },
    },
    {
      name: 'malformed keys and signatures verify as false, never throw (sync and async)',
      async run() {
        const m = new Uint8Array([1, 2, 3]);
        const bad: Array<[string, Uint8Array, Uint8Array]> = [
          ['31-byte key', new Uint8Array(31), new Uint8Array(64)],
          ['63-byte signature', new Uint8Array(32), new Uint8Array(63)],
          ['key not on the curve, signature all ones', new Uint8Array(32).fill(255), new Uint8Array(64).fill(255)],
          ['zero key and signature', new Uint8Array(32), new Uint8Array(64)],
        ];
        for (const [what, key, signature] of bad) {
          ok(adapter.verify(key, m, signature) === false, `${what}: verify`);
          ok((await adapter.verifyAsync(key, m, signature)) === false, `${what}: verifyAsync`);
          ok((await adapter.verifyParallel(key, m, signature)) === false, `${what}: verifyParallel`);
        }
      },
    },
    {
      name: 'edge cases (small-order and mixed-order points, S ≥ L, non-canonical R): the same verdict as every other platform, sync and async',
      async run() {
        for (const [i, v] of EDGE_CASE_VECTORS.entries()) {
          const [key, message, signature] = [hexDecode(v.publicKey), hexDecode(v.message), hexDecode(v.signature)];
          ok(adapter.verify(key, message, signature) === v.valid, `case ${i}: verify should say ${v.valid}`);
          ok((await adapter.verifyAsync(key, message, signature)) === v.valid, `case ${i}: verifyAsync should say ${v.valid}`);
          ok((await adapter.verifyParallel(key, message, signature)) === v.valid, `case ${i}: verifyParallel should say ${v.valid}`);
        }
      },
    },
    {
      name: 'sha256 of the empty string and of "abc" (FIPS 180-2)',
      async run() {
        same(adapter.sha256(new Uint8Array()), hexDecode('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'), 'sha256("")');
        same(adapter.sha256(new TextEncoder().encode('abc')), hexDecode('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'), 'sha256("abc")');
      },
    },
  ];
}

/** Runs every check of `adapter` against `reference`; never throws. */
export async function runCryptoCompliance(adapter: CryptoAdapter, reference: CryptoAdapter, opts: { seed?: string; inputs?: number } = {}): Promise<CryptoComplianceResult[]> {
  const results: CryptoComplianceResult[] = [];
  for (const c of cases(adapter, reference, opts.seed ?? 'hypersync', opts.inputs ?? EQUIVALENCE_INPUTS)) {
    try {
      await c.run();
      results.push({ name: c.name, ok: true });
    } catch (e) {
      results.push({ name: c.name, ok: false, error: e instanceof Error ? e.message : String(e) });
    }
  }
  return results;
}
