/**
 * A task session's channel to the runtime's host in this process: what a worker thread posts
 * (submit, object, cancel, and its requests) goes straight to the host, as the embedded pool
 * forwards a thread's messages (sdk/local/pool.ts). `host` is read at each call: the runtime
 * hands it to the invoker's `serve` after the link is made.
 */
import type { ObjectStore, TaskHost } from '../../sdk/backend.js';
import type { FromWorker } from '../../sdk/local/messages.js';
import type { ThreadLink } from '../../sdk/local/thread-session.js';

export function hostLink(store: ObjectStore, host: () => TaskHost | undefined, maxTaskDepth = 100): ThreadLink {
  return {
    store,
    maxTaskDepth,
    send(m: FromWorker) {
      if (m.kind === 'submit') host()!.submit(m.parent, m.task);
      else if (m.kind === 'object') host()!.put(m.parent, m.id, m.bytes);
      else if (m.kind === 'cancel') host()!.cancel(m.parent, m.id, m.force, m.recursive);
    },
    request: (parent, req) => host()!.await(parent, req),
  };
}
