/** The shared scenarios on a stack deployed to AWS (npm run test:aws). */
import { defineDeployedTier } from '../emulator/deployed.js';

await defineDeployedTier('aws');
