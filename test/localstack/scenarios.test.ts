/** The shared scenarios on a stack deployed to LocalStack (npm run test:localstack). */
import { defineDeployedTier } from '../emulator/deployed.js';

await defineDeployedTier('localstack');
