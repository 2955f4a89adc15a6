// RFC 9162 / RFC 6962 Merkle tree: known answers from the Certificate Transparency
// reference vectors (8 leaves "", 00, 10, 2021, 3031, 40414243, 5051525354555657,
// 606162…6f; roots, inclusion and consistency proofs as published in
// github.com/transparency-dev/merkle proof/verify_test.go, which carries the CT/Trillian
// vectors), the same corruption probes that file applies, and properties over random
// sizes: every proof verifies, every altered proof fails.
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
// [leaf index (0-based; the Go file counts leaves from 1), tree size, proof]
const CT_INCLUSION: Array<[number, number, string[]]> = [
  [2, 3, ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125']],
  [1, 5, ['6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b']],
  [0, 8, ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4']],
  [5, 8, ['bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']],
];
const CT_CONSISTENCY: Array<[number, number, string[]]> = [
  [1, 8, ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4']],
  [6, 8, ['0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']],
  [2, 5, ['5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b']],
  [6, 7, ['0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a', 'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']],
];
/** verify_test.go's sha256SomeHash: a well-formed hash that is nobody's root. */
const SOME_HASH = hexDecode('abacaba000000000000000000000000000000000000000000060061e00123456');

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

test('the reference corruption probes (transparency-dev/merkle verify_test.go) all fail', () => {
  const flip = (proof: Uint8Array[], i: number, mask: number): Uint8Array[] => proof.map((h, j) => (j === i ? Uint8Array.from(h, (b, k) => (k === 0 ? b ^ mask : b)) : h));
  for (const [index, size, hex] of CT_INCLUSION) {
    const proof = hex.map(hexDecode);
    const root = hexDecode(CT_ROOTS[size - 1]!);
    const leaf = leafHash(CT_DATA[index]!);
    assert.ok(verifyInclusion(leaf, index, size, proof, root));
    const probes: Array<[string, number, number, Uint8Array, Uint8Array, Uint8Array[]]> = [
      ['index - 1', index - 1, size, root, leaf, proof],
      ['index + 1', index + 1, size, root, leaf, proof],
      ['index ^ 2', index ^ 2, size, root, leaf, proof],
      ['size * 2', index, size * 2, root, leaf, proof],
      ['size / 2', index, Math.floor(size / 2), root, leaf, proof],
      ['wrong leaf', index, size, root, new TextEncoder().encode('WrongLeaf'), proof],
      ['empty root', index, size, emptyRoot(), leaf, proof],
      ['random root', index, size, SOME_HASH, leaf, proof],
      ['trailing garbage', index, size, root, leaf, [...proof, new Uint8Array()]],
      ['trailing root', index, size, root, leaf, [...proof, root]],
      ['preceding garbage', index, size, root, leaf, [new Uint8Array(), ...proof]],
      ['preceding root', index, size, root, leaf, [root, ...proof]],
      ...proof.map((_, i) => [`proof[${i}] bit 3`, index, size, root, leaf, flip(proof, i, 8)] as [string, number, number, Uint8Array, Uint8Array, Uint8Array[]]),
      ['removed component', index, size, root, leaf, proof.slice(0, -1)],
      ...(proof.length > 1 ? [['inserted component', index, size, root, leaf, [SOME_HASH, proof[0]!, ...proof.slice(1)]] as [string, number, number, Uint8Array, Uint8Array, Uint8Array[]]] : []),
    ];
    for (const [what, i, n, r, l, p] of probes) assert.ok(!verifyInclusion(l, i, n, p, r), `inclusion ${index}/${size}: ${what} verified`);
  }
  for (const [m, n, hex] of CT_CONSISTENCY) {
    const proof = hex.map(hexDecode);
    const r1 = hexDecode(CT_ROOTS[m - 1]!);
    const r2 = hexDecode(CT_ROOTS[n - 1]!);
    const wrong = new TextEncoder().encode('WrongRoot');
    const probes: Array<[string, number, number, Uint8Array, Uint8Array, Uint8Array[]]> = [
      ['size1 - 1', m - 1, n, r1, r2, proof],
      ['size1 + 1', m + 1, n, r1, r2, proof],
      ['size1 ^ 2', m ^ 2, n, r1, r2, proof],
      ['size2 * 2', m, n * 2, r1, r2, proof],
      ['size2 / 2', m, Math.floor(n / 2), r1, r2, proof],
      ['wrong root1', m, n, wrong, r2, proof],
      ['wrong root2', m, n, r1, wrong, proof],
      ['swapped roots', m, n, r2, r1, proof],
      ['empty proof', m, n, r1, r2, []],
      ['trailing garbage', m, n, r1, r2, [...proof, new Uint8Array()]],
      ['trailing root1', m, n, r1, r2, [...proof, r1]],
      ['trailing root2', m, n, r1, r2, [...proof, r2]],
      ['preceding garbage', m, n, r1, r2, [new Uint8Array(), ...proof]],
      ['preceding root1', m, n, r1, r2, [r1, ...proof]],
      ['preceding root2', m, n, r1, r2, [r2, ...proof]],
      ['preceding proof[0]', m, n, r1, r2, [proof[0]!, ...proof]],
      ['truncated proof', m, n, r1, r2, proof.slice(0, -1)],
      ...proof.map((_, i) => [`proof[${i}] bit 4`, m, n, r1, r2, flip(proof, i, 16)] as [string, number, number, Uint8Array, Uint8Array, Uint8Array[]]),
    ];
    for (const [what, a, b, x, y, p] of probes) assert.ok(!verifyConsistency(a, b, x, y, p), `consistency ${m}→${n}: ${what} verified`);
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
