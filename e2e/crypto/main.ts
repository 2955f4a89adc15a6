// Runs the crypto adapter compliance suite inside a real browser: the adapter the browser
// build picks (WebCrypto Ed25519 when the browser has it, detected once at load) against
// @noble, on 1,000 random inputs, the RFC 8032 vectors and the edge cases. Results land on
// window for the test driver (e2e/crypto-browser.test.ts).
import crypto from '#crypto-adapter';
import { EQUIVALENCE_INPUTS, runCryptoCompliance, type CryptoComplianceResult } from '../../src/crypto/compliance.ts';
import { nobleCrypto } from '../../src/crypto/noble.ts';

declare global {
  interface Window {
    cryptoResults?: { adapter: string; seed: string; inputs: number; results: CryptoComplianceResult[] };
    cryptoError?: string;
  }
}

const query = new URLSearchParams(location.search);
const seed = query.get('seed') ?? `browser-${Date.now()}`;
const inputs = Number(query.get('inputs') ?? EQUIVALENCE_INPUTS);
runCryptoCompliance(crypto, nobleCrypto, { seed, inputs })
  .then((results) => {
    window.cryptoResults = { adapter: crypto.name, seed, inputs, results };
    document.getElementById('out')!.textContent = [`adapter ${crypto.name}, seed ${seed}`, ...results.map((r) => `${r.ok ? 'ok  ' : 'FAIL'} ${r.name}${r.error ? `: ${r.error}` : ''}`)].join('\n');
  })
  .catch((e: unknown) => {
    window.cryptoError = String(e);
  });
