import { Runtime } from 'volley';
import { defineActorScenarios } from '../actor-scenarios.js';

defineActorScenarios({
  tier: 'the embedded runtime',
  start: () => new Runtime({ local: { maxWorkers: 12 } }).ready(),
  calls: 200,
  hangTimeoutMs: 500,
});
