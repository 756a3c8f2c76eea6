export interface Summary {
  values: number[];
  min: number;
  median: number;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** min and median; for figures where more is better (tasks/s) "min" is the best, i.e. the max. */
export function summarize(values: number[], higherIsBetter = false): Summary {
  return { values, min: higherIsBetter ? Math.max(...values) : Math.min(...values), median: median(values) };
}
