/**
 * LocalStack in a container, started through Testcontainers (`@testcontainers/localstack`), for
 * `npm run test:localstack` and `npx volley localstack up|down`.
 *
 * - Image: `LOCALSTACK_IMAGE`, else a pinned tag that runs without an account. LocalStack images
 *   published after 4.14.0 (and `latest` since March 2026) refuse to start without
 *   `LOCALSTACK_AUTH_TOKEN`; when one exits for that reason, the error says so in one line.
 * - LocalStack runs Node Lambdas in containers of its own, so the Docker socket is mounted into
 *   it; `LAMBDA_IGNORE_ARCHITECTURE` lets the arm64 function of serverless.yml run on an x86 host
 *   (the worker bundle is plain JavaScript).
 * - Without Docker, or without the image and a registry to pull it from, `localStackProblem`
 *   says in one line what is missing and how to get it, so callers can skip.
 *
 * `@testcontainers/localstack` is a development dependency (as osls and serverless-localstack
 * are): it is imported only here, only when asked for.
 */
import { ConfigError } from '../sdk/errors.js';

/** The newest LocalStack image that starts without an auth token. */
export const DEFAULT_LOCALSTACK_IMAGE = 'localstack/localstack:4.14.0';
/** LocalStack's one edge port. */
export const LOCALSTACK_PORT = 4566;
/** Label of the container `volley localstack up` leaves running, so `down` finds it. */
export const UP_LABEL = 'dev.volley.localstack';

export interface LocalStackSettings {
  image: string;
  authToken?: string;
}

export function localStackSettings(env: NodeJS.ProcessEnv = process.env): LocalStackSettings {
  const image = env.LOCALSTACK_IMAGE?.trim() || DEFAULT_LOCALSTACK_IMAGE;
  const authToken = env.LOCALSTACK_AUTH_TOKEN?.trim() || undefined;
  return { image, ...(authToken ? { authToken } : {}) };
}

/** The one line to print when a LocalStack container's output shows it wants an account; else undefined. */
export function authTokenProblem(output: string, s: LocalStackSettings): string | undefined {
  if (!/license activation failed|requires an account to run|LOCALSTACK_AUTH_TOKEN/i.test(output)) return undefined;
  return s.authToken
    ? `LocalStack image ${s.image} rejected LOCALSTACK_AUTH_TOKEN (license activation failed): check the token at app.localstack.cloud, or use LOCALSTACK_IMAGE=${DEFAULT_LOCALSTACK_IMAGE}, which needs none`
    : `LocalStack image ${s.image} needs an account: set LOCALSTACK_AUTH_TOKEN (app.localstack.cloud, Auth Tokens), or use LOCALSTACK_IMAGE=${DEFAULT_LOCALSTACK_IMAGE}, which needs none`;
}

type Testcontainers = typeof import('testcontainers');
type LocalStackModule = typeof import('@testcontainers/localstack');

async function load(): Promise<{ tc: Testcontainers; ls: LocalStackModule }> {
  try {
    return { tc: await import('testcontainers'), ls: await import('@testcontainers/localstack') };
  } catch (err) {
    throw new ConfigError('starting LocalStack needs @testcontainers/localstack: npm install --save-dev @testcontainers/localstack@11', { cause: err });
  }
}

/**
 * Why LocalStack cannot be started here, in one line (what is missing and how to get it), or
 * undefined when Docker answers and the image is present or can be pulled.
 */
export async function localStackProblem(s: LocalStackSettings = localStackSettings()): Promise<string | undefined> {
  let tc: Testcontainers;
  try {
    ({ tc } = await load());
  } catch (err) {
    return (err as Error).message;
  }
  let client: Awaited<ReturnType<Testcontainers['getContainerRuntimeClient']>>;
  try {
    client = await tc.getContainerRuntimeClient();
  } catch (err) {
    return (
      `no Docker daemon answers (${(err as Error).message}; DOCKER_HOST=${process.env.DOCKER_HOST ?? 'unset'}): ` +
      'install and start Docker (or point DOCKER_HOST at one), or start LocalStack yourself and set AWS_ENDPOINT_URL'
    );
  }
  const name = tc.ImageName.fromString(s.image);
  if (await client.image.exists(name)) return undefined;
  try {
    await client.image.pull(name);
    return undefined;
  } catch (err) {
    return `Docker has no image ${s.image} and could not pull it (${(err as Error).message.split('\n')[0]}): docker pull ${s.image} where Docker Hub is reachable, or set LOCALSTACK_IMAGE to an image you have`;
  }
}

export interface RunningLocalStack {
  /** http://host:port of LocalStack's edge: what AWS_ENDPOINT_URL is set to. */
  endpoint: string;
  stop(): Promise<void>;
}

/**
 * Starts LocalStack and waits until it is ready. `keep`: the container outlives this process
 * (no reaper), on host port 4566 (LocalStack's default, where the `localstack` target looks
 * without AWS_ENDPOINT_URL), labelled for `keptLocalStack` and `stopKeptLocalStack`. Otherwise it takes a free port
 * and Testcontainers removes it when this process ends, if `stop` was not called first.
 */
export async function startLocalStack(o: { settings?: LocalStackSettings; keep?: boolean } = {}): Promise<RunningLocalStack> {
  const s = o.settings ?? localStackSettings();
  // A kept container must not be reaped, nor the Lambda containers LocalStack labels with this
  // process's session, when this process exits.
  if (o.keep) process.env.TESTCONTAINERS_RYUK_DISABLED = 'true';
  const { tc, ls } = await load();
  const client = await tc.getContainerRuntimeClient();
  const container = new ls.LocalstackContainer(s.image)
    .withEnvironment({ LAMBDA_IGNORE_ARCHITECTURE: '1', ...(s.authToken ? { LOCALSTACK_AUTH_TOKEN: s.authToken } : {}) })
    .withBindMounts([{ source: client.info.containerRuntime.remoteSocketPath, target: '/var/run/docker.sock' }]);
  if (o.keep) container.withExposedPorts({ container: LOCALSTACK_PORT, host: LOCALSTACK_PORT }).withLabels({ [UP_LABEL]: 'true' });
  // Its output, kept for the error message if it does not start (an image that wants an account says so there).
  let output = '';
  let logs: { destroy(): void } | undefined;
  container.withLogConsumer((stream) => {
    logs = stream;
    stream.on('data', (d: Buffer | string) => void (output = (output + d.toString()).slice(-20_000)));
  });
  try {
    const started = await container.start();
    logs?.destroy(); // a followed log stream would keep `volley localstack up` from exiting
    return { endpoint: started.getConnectionUri(), stop: async () => void (await started.stop()) };
  } catch (err) {
    const token = authTokenProblem(output, s);
    throw new ConfigError(token ?? `LocalStack (${s.image}) did not start: ${(err as Error).message}\n${output.slice(-2000)}`, { cause: err });
  }
}

async function keptContainers(tc: Testcontainers) {
  const client = await tc.getContainerRuntimeClient();
  return { client, kept: (await client.container.list()).filter((c) => c.Labels?.[UP_LABEL] === 'true') };
}

/** The endpoint of a container `startLocalStack({ keep: true })` left running, if there is one. */
export async function keptLocalStack(): Promise<string | undefined> {
  const { kept } = await keptContainers((await load()).tc);
  return kept.length > 0 ? `http://localhost:${LOCALSTACK_PORT}` : undefined;
}

/** Stops and removes the container `startLocalStack({ keep: true })` left running; returns how many it removed. */
export async function stopKeptLocalStack(): Promise<number> {
  const { client, kept } = await keptContainers((await load()).tc);
  for (const c of kept) {
    const container = client.container.getById(c.Id);
    await client.container.stop(container, { timeout: 10 });
    await client.container.remove(container, { removeVolumes: true });
  }
  return kept.length;
}
