// Public surface of the pure PBFT core (replica.ts has the protocol and its invariants).
//
//   const replica = new PbftReplica({ id, membership, signer: ed25519Signer(seed), verifier: sha256Ed25519, clientKey });
//   replica.step(fromPeer, decodeMessage(frame, replica.limits));   // and replica.tick() every 50 ms
//   for (let rd = replica.ready(); rd !== null; rd = replica.ready()) {
//     send(rd.messages, rd.replies); if (rd.restore) app.restore(rd.restore);
//     replica.advance(rd, rd.committed.map((b) => app.execute(b)));     // results (+ snapshot at checkpoints)
//   }
//   verifyCertificate(certificateFromText(receipt.certificate), membership);   // offline, anywhere
export * from './types.ts';
export * from './errors.ts';
export { PbftReplica, MAX_BATCHES_PER_SLOT, VIEW_CHANGE_WINDOW, OWN_VIEW_CHANGES_KEPT, type PbftStats, type PbftStatus } from './replica.ts';
export { PbftClient, DEFAULT_MAX_RETRANSMITS, DEFAULT_RETRANSMIT_TICKS, type ClientCompletion, type ClientOutput, type PbftClientConfig } from './client.ts';
export { PbftAuth, SIGNING_DOMAIN, checkMembership, ed25519Signer, sha256Ed25519, type Quorums } from './auth.ts';
export {
  certificateFromText,
  certificateToText,
  commitCertificate,
  decodeCertificate,
  encodeCertificate,
  replyCertificate,
  verifyCertificate,
  type CertificateProblem,
  type CertificateVerdict,
  type CommitCertificate,
  type QuorumCertificate,
  type ReplyCertificate,
  type ReplySignature,
} from './certificate.ts';
export { PBFT_WIRE_VERSION, TYPE_CODES, decodeMessage, encodeMessage, signedPart, type CodecLimits } from './codec.ts';
export { GENESIS_DIGEST, computeNewViewOrder, primaryOf } from './view-change.ts';
