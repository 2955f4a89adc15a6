// The Raft runtime: the pure core (../raft.ts) driven with injected transport, timers and
// storage, behind the Consensus interface (../../engine.ts).
//
//   const engine = await RaftRuntime.open({ id, transport, store, replica, bootstrap: { voters, learners } });
//   await engine.start();
//   const { result } = await engine.submit({ operator_id: 'counter.add', inputs: { key: 'n', delta: 1 } }, { signal });
//   const read = await engine.read('kv.get', { key: 'n' });   // linearizable (ReadIndex)
//   await engine.close();
export { RaftRuntime, type RaftRuntimeOptions, type RaftRuntimeStatus, type RaftEvent } from './runtime.ts';
export { RaftStorage, RaftStorageError, SNAPSHOT_CHUNK_BYTES } from './storage.ts';
export { decodeConsensusPayload, encodeConsensusPayload, MAX_MESSAGES_PER_ENVELOPE, MAX_PROPOSALS_PER_ENVELOPE, type ConsensusPayload, type ForwardedProposal, type ProposalAnswer } from './wire.ts';
export * from './limits.ts';
