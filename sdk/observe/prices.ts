/**
 * The price table behind `rt.cost()`. Pure data, no dependencies: options.ts validates
 * overrides against its keys.
 */

/** Prices in USD. Override any of them with `init({ cost: { prices } })`. @public */
export interface PriceTable {
  /** The region these prices are for. */
  region: string;
  /** Where they come from. */
  source: string;
  /** When they were taken from there. */
  asOf: string;
  /** One Lambda invocation (request). */
  lambdaRequest: number;
  /** One GB-second of Lambda duration, by architecture (first monthly usage tier). */
  lambdaGbSecond: { x86_64: number; arm64: number };
  /** One S3 PUT, COPY, POST or LIST request (S3 Standard); multipart parts count one each. */
  s3PutRequest: number;
  /** One S3 GET (or other read) request. DELETE requests are free. */
  s3GetRequest: number;
  /**
   * One GB (2^30 bytes) moved from S3 to a driver outside AWS (data transfer out to the
   * internet, first tier). Set it to 0 when the driver runs in the bucket's region.
   */
  s3TransferOutPerGB: number;
}

/** Price overrides: any subset of the table. @public */
export type PriceOverrides = Partial<Omit<PriceTable, 'lambdaGbSecond'>> & { lambdaGbSecond?: Partial<PriceTable['lambdaGbSecond']> };

/**
 * US East (N. Virginia), on-demand, first usage tier, without the free tier (1 M requests and
 * 400,000 GB-seconds a month for Lambda; 100 GB a month of transfer out).
 * Lambda: $0.20 per million requests; $0.0000166667 per GB-second on x86_64 and
 * $0.0000133334 on arm64, unchanged since 1 ms billing (December 2020) and arm64 (September
 * 2021). S3 Standard: $0.005 per 1,000 PUT/COPY/POST/LIST, $0.0004 per 1,000 GET; transfer
 * out $0.09 per GB. Lambda bills the INIT phase of a cold start as duration too; the figures
 * here count the handler's time only (see docs/OBSERVE.md).
 */
export const US_EAST_1: PriceTable = {
  region: 'us-east-1',
  source: 'https://aws.amazon.com/lambda/pricing/ and https://aws.amazon.com/s3/pricing/ (US East (N. Virginia))',
  asOf: '2026-11-26',
  lambdaRequest: 0.2 / 1e6,
  lambdaGbSecond: { x86_64: 0.0000166667, arm64: 0.0000133334 },
  s3PutRequest: 0.005 / 1000,
  s3GetRequest: 0.0004 / 1000,
  s3TransferOutPerGB: 0.09,
};

/** Price tables by region. Regions not listed are priced with us-east-1's table, and the report says so. */
export const PRICE_TABLES: Readonly<Record<string, PriceTable>> = { 'us-east-1': US_EAST_1 };

export const PRICE_KEYS = ['region', 'source', 'asOf', 'lambdaRequest', 'lambdaGbSecond', 's3PutRequest', 's3GetRequest', 's3TransferOutPerGB'] as const;
