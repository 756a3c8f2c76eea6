/** An ES module with nothing in it: bench/startup.ts imports it in a thread to time Node's ESM loader alone (reading a file included). */
export {};
