/**
 * A stand-in for the Lambda Invoke API that only the benchmark uses: it answers every call at
 * once with a small valid result, so the AWS path's client side (serialization, HTTP, parsing)
 * can be measured without a function behind it.
 */
import { Worker } from 'node:worker_threads';
import type { Stoppable } from '../../infra/emulators.js';
import { PROTOCOL_VERSION } from '../../sdk/protocol.js';

/**
 * For benchmarks: an endpoint of the Lambda Invoke API that answers every call at once with a
 * small valid result, in a worker thread of its own (so it does not share the client's
 * event loop). Measures the client side of invocation: serialization, HTTP, parsing.
 */
export async function startInstantLambda(): Promise<Stoppable & { invocations(): Promise<number> }> {
  const source = `
    const http = require('node:http');
    const { parentPort } = require('node:worker_threads');
    let n = 0;
    const body = JSON.stringify({ v: ${PROTOCOL_VERSION}, kind: 'value', taskId: 'bench', bytes: { $b64: 'AAE=' }, timing: { fetchMs: 0, runMs: 0, storeMs: 0 } });
    const server = http.createServer((req, res) => {
      req.on('data', () => {});
      req.on('end', () => {
        n++;
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-amzn-requestid': 'r' + n });
        res.end(body);
      });
    });
    server.keepAliveTimeout = 60000;
    server.listen(0, '127.0.0.1', () => parentPort.postMessage({ port: server.address().port }));
    parentPort.on('message', (m) => {
      if (m === 'count') parentPort.postMessage({ count: n });
      if (m === 'stop') { server.closeAllConnections(); server.close(() => process.exit(0)); }
    });
  `;
  const worker = new Worker(source, { eval: true });
  const port = await new Promise<number>((resolveP, reject) => {
    worker.once('message', (m: { port: number }) => resolveP(m.port));
    worker.once('error', reject);
  });
  return {
    endpoint: `http://127.0.0.1:${port}`,
    invocations: () =>
      new Promise((resolveP) => {
        const on = (m: { count?: number }) => {
          if (m.count !== undefined) {
            worker.off('message', on);
            resolveP(m.count);
          }
        };
        worker.on('message', on);
        worker.postMessage('count');
      }),
    async stop() {
      const exited = new Promise((r) => worker.once('exit', r));
      worker.postMessage('stop');
      await exited;
    },
  };
}
