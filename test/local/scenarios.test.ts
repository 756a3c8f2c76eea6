import { tmpdir } from 'node:os';
import { Runtime } from 'volley';
import { defineScenarios } from '../scenarios.js';

defineScenarios({
  tier: 'the embedded runtime',
  start: () => new Runtime({ local: { maxWorkers: 16 } }).ready(),
  matrixSize: 150,
  sleepScale: 0.3,
  sharedDir: tmpdir(),
});
