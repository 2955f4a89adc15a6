// One-line descriptions of Raft messages for the simulator's replayable traces.
import type { Message } from '../consensus/raft/index.ts';

export function describeMessage(m: Message): string {
  switch (m.type) {
    case 'append':
      return `append t${m.term} prev=${m.prevIndex}/${m.prevTerm} n=${m.entries.length} commit=${m.commit}`;
    case 'appendResp':
      return `appendResp t${m.term} idx=${m.index}${m.reject ? ` REJECT hint=${m.hintIndex}/${m.hintTerm}` : ''}`;
    case 'vote':
      return `${m.preVote ? 'preVote' : 'vote'} t${m.term} last=${m.lastIndex}/${m.lastTerm}`;
    case 'voteResp':
      return `${m.preVote ? 'preVoteResp' : 'voteResp'} t${m.term} ${m.reject ? 'REJECT' : 'grant'}`;
    case 'snapshot':
      return `snapshot t${m.term} @${m.meta.index} off=${m.offset}/${m.totalBytes}`;
    case 'snapshotResp':
      return `snapshotResp t${m.term} @${m.snapIndex} next=${m.nextOffset}${m.reject ? ' REJECT' : ''}`;
    default:
      return `${m.type} t${m.term}`;
  }
}
