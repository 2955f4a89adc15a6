// RFC 9162 / RFC 6962 Merkle tree: known answers from the Certificate Transparency
// reference vectors (google/certificate-transparency merkle tree tests: 8 leaves
// "", 00, 10, 2021, 3031, 40414243, 5051525354555657, 606162…6f), and properties over
// random sizes: every proof verifies, every altered proof fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { hexDecode, hexEncode } from '../../src/crypto/index.ts';
import {
  consistencyPath, emptyRoot, inclusionPath, leafHash, MerkleFrontier, verifyConsistency, verifyInclusion, type NodeReader,
} from '../../src/receipts/merkle.ts';

const CT_DATA = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map(hexDecode);
const CT_ROOTS = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];
const CT_INCLUSION: Array<[number, number, string[]]> = [
  [0, 8, ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4']],
  [5, 8, ['bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']],
];
const CT_CONSISTENCY: Array<[number, number, string[]]> = [
  [1, 8, ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4']],
  [6, 8, ['0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']],
  [2, 5, ['5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b']],
];

/** An in-memory node table filled by a frontier, read like a store would be. */
function build(leaves: Uint8Array[]): { frontier: MerkleFrontier; read: NodeReader; roots: Uint8Array[]; reads: { n: number } } {
  const nodes = new Map<string, Uint8Array>();
  const frontier = new MerkleFrontier();
  const roots: Uint8Array[] = [emptyRoot()];
  for (const leaf of leaves) {
    for (const [level, index, hash] of frontier.append(leaf)) nodes.set(`${level}/${index}`, hash);
    roots.push(frontier.root());
  }
  const reads = { n: 0 };
  const read: NodeReader = async (level, index) => {
    reads.n++;
    const h = nodes.get(`${level}/${index}`);
    if (h === undefined) throw new Error(`missing node ${level}/${index}`);
    return h;
  };
  return { frontier, read, roots, reads };
}

const ct = build(CT_DATA.map(leafHash));

test('CT reference roots for sizes 0..8 (empty tree = SHA-256 of "")', () => {
  assert.equal(hexEncode(ct.roots[0]!), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  for (let n = 1; n <= 8; n++) assert.equal(hexEncode(ct.roots[n]!), CT_ROOTS[n - 1], `size ${n}`);
});

test('CT reference inclusion proofs are generated and verify', async () => {
  for (const [index, size, proof] of CT_INCLUSION) {
    const got = (await inclusionPath(ct.read, index, 0, size)).map(hexEncode);
    assert.deepEqual(got, proof);
    assert.ok(verifyInclusion(leafHash(CT_DATA[index]!), index, size, proof.map(hexDecode), hexDecode(CT_ROOTS[size - 1]!)));
  }
});

test('CT reference consistency proofs are generated and verify', async () => {
  for (const [m, n, proof] of CT_CONSISTENCY) {
    assert.deepEqual((await consistencyPath(ct.read, m, n)).map(hexEncode), proof, `${m}→${n}`);
    assert.ok(verifyConsistency(m, n, hexDecode(CT_ROOTS[m - 1]!), hexDecode(CT_ROOTS[n - 1]!), proof.map(hexDecode)));
  }
});

test('degenerate cases: equal sizes, empty first tree, out-of-range indexes', () => {
  const r4 = ct.roots[4]!;
  assert.ok(verifyConsistency(4, 4, r4, r4, []));
  assert.ok(!verifyConsistency(4, 4, r4, ct.roots[5]!, []));
  assert.ok(verifyConsistency(0, 8, emptyRoot(), ct.roots[8]!, []));
  assert.ok(!verifyConsistency(8, 4, ct.roots[8]!, r4, []));
  assert.ok(!verifyInclusion(leafHash(CT_DATA[0]!), 8, 8, [], ct.roots[8]!));
  assert.ok(!verifyInclusion(leafHash(CT_DATA[0]!), -1, 8, [], ct.roots[8]!));
  assert.ok(!verifyInclusion(new Uint8Array(31), 0, 1, [], ct.roots[1]!));
});

const leavesOf = (n: number): Uint8Array[] => Array.from({ length: n }, (_, i) => leafHash(new TextEncoder().encode(`leaf ${i}`)));
const big = build(leavesOf(300));

test('property: every inclusion proof verifies; any altered proof fails', async () => {
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 1, max: 300 }), fc.nat(), fc.nat(), async (size, rawIndex, pick) => {
      const index = rawIndex % size;
      const leaf = leavesOf(index + 1)[index]!;
      const path = await inclusionPath(big.read, index, 0, size);
      const root = big.roots[size]!;
      assert.ok(verifyInclusion(leaf, index, size, path, root));
      assert.ok(!verifyInclusion(leaf, index, size, [...path, new Uint8Array(32)], root), 'extended');
      if (path.length > 0) {
        const i = pick % path.length;
        const flipped = path.map((h) => Uint8Array.from(h));
        flipped[i]![pick % 32] = (flipped[i]![pick % 32] as number) ^ 1;
        assert.ok(!verifyInclusion(leaf, index, size, flipped, root), 'flipped');
        assert.ok(!verifyInclusion(leaf, index, size, path.slice(0, -1), root), 'truncated');
      }
      if (size > 1) assert.ok(!verifyInclusion(leaf, (index + 1) % size, size, path, root), 'wrong index');
    }),
    { numRuns: 400 },
  );
});

test('property: every consistency proof verifies; any altered proof fails', async () => {
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 300 }), fc.nat(), async (a, b, pick) => {
      const [m, n] = a <= b ? [a, b] : [b, a];
      const proof = await consistencyPath(big.read, m, n);
      assert.ok(verifyConsistency(m, n, big.roots[m]!, big.roots[n]!, proof));
      if (proof.length > 0) {
        const flipped = proof.map((h) => Uint8Array.from(h));
        const i = pick % proof.length;
        flipped[i]![pick % 32] = (flipped[i]![pick % 32] as number) ^ 0x80;
        assert.ok(!verifyConsistency(m, n, big.roots[m]!, big.roots[n]!, flipped), 'flipped');
        assert.ok(!verifyConsistency(m, n, big.roots[m]!, big.roots[n]!, proof.slice(0, -1)), 'truncated');
        assert.ok(!verifyConsistency(m, n, big.roots[m]!, big.roots[n]!, [...proof, new Uint8Array(32)]), 'extended');
      }
      if (m < n) assert.ok(!verifyConsistency(m, n, big.roots[m]!, big.roots[n - 1]!, proof), 'wrong second root');
    }),
    { numRuns: 400 },
  );
});

test('proofs need O(log n) node reads', async () => {
  const reads = big.reads;
  for (const size of [255, 256, 257, 300]) {
    for (const index of [0, Math.floor(size / 2), size - 1]) {
      reads.n = 0;
      await inclusionPath(big.read, index, 0, size);
      assert.ok(reads.n <= 2 * Math.ceil(Math.log2(size)) + 2, `inclusion ${index}/${size}: ${reads.n} reads`);
    }
    reads.n = 0;
    await consistencyPath(big.read, Math.floor(size / 3) + 1, size);
    assert.ok(reads.n <= 2 * Math.ceil(Math.log2(size)) + 2, `consistency: ${reads.n} reads`);
  }
});

test('a frontier rebuilt from its shape gives the same root', () => {
  for (const size of [1, 2, 3, 7, 8, 100, 255, 256, 300]) {
    const shape = MerkleFrontier.shape(size);
    assert.equal(shape.reduce((acc, [level]) => acc + 2 ** level, 0), size);
  }
});
