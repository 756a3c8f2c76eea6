/** Builds a system by name, loading only its own code (and peers). */
import type { System, SystemName } from './types.js';

export async function createSystem(name: SystemName): Promise<System> {
  switch (name) {
    case 'volley': {
      const { VolleySystem } = await import('./volley.js');
      return new VolleySystem('volley');
    }
    case 'emulator': {
      const { EmulatorSystem } = await import('./volley.js');
      return new EmulatorSystem();
    }
    case 'pool': {
      const { PoolSystem } = await import('./pool.js');
      return new PoolSystem();
    }
    case 'faast': {
      const { FaastSystem } = await import('./faast.js');
      return new FaastSystem();
    }
  }
}
