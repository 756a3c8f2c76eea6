import { execFileSync } from 'node:child_process';
import { availableParallelism, cpus, hostname, platform, release, totalmem } from 'node:os';
import { repoRoot } from './paths.js';

export interface Machine {
  cores: number;
  cpuModel: string;
  memoryBytes: number;
  node: string;
  platform: string;
  hostname: string;
}

export function machine(): Machine {
  return {
    cores: availableParallelism(),
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    memoryBytes: totalmem(),
    node: process.version,
    platform: `${platform()} ${release()}`,
    hostname: hostname(),
  };
}

export function commit(): string {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'sdk', 'infra', 'handlers'], { cwd: repoRoot, encoding: 'utf8' }).trim();
    return dirty ? `${sha}+dirty` : sha;
  } catch {
    return 'unknown';
  }
}
