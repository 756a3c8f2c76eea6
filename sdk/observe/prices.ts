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
 * Where the table's prices come from. Lambda bills a cold start's INIT phase as duration too
 * (since 1 August 2025 for on-demand functions packaged as ZIP on a managed runtime, as
 * volley's are): https://aws.amazon.com/blogs/compute/aws-lambda-standardizes-billing-for-init-phase/
 */
const SOURCE =
  'AWS Price List (pricing.us-east-1.amazonaws.com/offers/v1.0/aws/{AWSLambda,AmazonS3,AWSDataTransfer}/current/<region>/index.json), as on https://aws.amazon.com/lambda/pricing/ and https://aws.amazon.com/s3/pricing/';
/** When the table was compiled (each region's figures had been unchanged through 2025-2026). */
const AS_OF = '2026-11-26';

/** Lambda on-demand prices, the same in every region of this table. */
const LAMBDA = { lambdaRequest: 0.2 / 1e6, lambdaGbSecond: { x86_64: 0.0000166667, arm64: 0.0000133334 } };

/** One region's row: S3 Standard PUT-class and GET-class requests per 1,000, transfer out per GB. */
function region(name: string, putPer1000: number, getPer1000: number, outPerGB: number): PriceTable {
  return {
    region: name,
    source: SOURCE,
    asOf: AS_OF,
    ...LAMBDA,
    lambdaGbSecond: { ...LAMBDA.lambdaGbSecond },
    s3PutRequest: putPer1000 / 1000,
    s3GetRequest: getPer1000 / 1000,
    s3TransferOutPerGB: outPerGB,
  };
}

/**
 * US East (N. Virginia), on-demand, first usage tier, without the free tier (1 M requests and
 * 400,000 GB-seconds a month for Lambda; 100 GB a month of transfer out).
 * Lambda: $0.20 per million requests; $0.0000166667 per GB-second on x86_64 and
 * $0.0000133334 on arm64. S3 Standard: $0.005 per 1,000 PUT/COPY/POST/LIST, $0.0004 per 1,000
 * GET; transfer out $0.09 per GB.
 */
export const US_EAST_1: PriceTable = region('us-east-1', 0.005, 0.0004, 0.09);

/**
 * Price tables of the common regions (first usage tier, no free tier). Lambda's request and
 * GB-second prices are the same in all of them; S3's requests and transfer out differ. A
 * region not listed needs its prices given: `init({ cost: { prices } })` with every price of
 * `PriceTable` (or `cost: { region }` to price the job at a listed region's rates).
 */
export const PRICE_TABLES: Readonly<Record<string, PriceTable>> = Object.fromEntries(
  [
    US_EAST_1,
    region('us-east-2', 0.005, 0.0004, 0.09),
    region('us-west-1', 0.0055, 0.00044, 0.09),
    region('us-west-2', 0.005, 0.0004, 0.09),
    region('ca-central-1', 0.0055, 0.00044, 0.09),
    region('eu-west-1', 0.005, 0.0004, 0.09),
    region('eu-west-2', 0.0053, 0.00042, 0.09),
    region('eu-west-3', 0.0053, 0.00042, 0.09),
    region('eu-central-1', 0.0054, 0.00043, 0.09),
    region('eu-north-1', 0.005, 0.0004, 0.09),
    region('ap-northeast-1', 0.0047, 0.00037, 0.114),
    region('ap-northeast-2', 0.0045, 0.00035, 0.126),
    region('ap-southeast-1', 0.005, 0.0004, 0.12),
    region('ap-southeast-2', 0.0055, 0.00044, 0.114),
    region('ap-south-1', 0.005, 0.0004, 0.1093),
    region('sa-east-1', 0.007, 0.00056, 0.15),
  ].map((t) => [t.region, t]),
);

export const PRICE_KEYS = ['region', 'source', 'asOf', 'lambdaRequest', 'lambdaGbSecond', 's3PutRequest', 's3GetRequest', 's3TransferOutPerGB'] as const;

/** The prices a table for a region not listed must be given (all but region, source and asOf). */
const REQUIRED = ['lambdaRequest', 's3PutRequest', 's3GetRequest', 's3TransferOutPerGB'] as const;

/**
 * The price table for `region`, with `overrides` applied. A region not in PRICE_TABLES needs
 * every price in the overrides; otherwise this throws a UsageError's message (returned as
 * `error`, so this module stays free of imports).
 */
export function lookupPrices(region: string, overrides?: PriceOverrides): { table: PriceTable } | { error: string } {
  const base = PRICE_TABLES[region];
  if (base) return { table: { ...base, ...overrides, lambdaGbSecond: { ...base.lambdaGbSecond, ...overrides?.lambdaGbSecond } } };
  const missing: string[] = REQUIRED.filter((k) => overrides?.[k] === undefined);
  for (const a of ['x86_64', 'arm64'] as const) if (overrides?.lambdaGbSecond?.[a] === undefined) missing.push(`lambdaGbSecond.${a}`);
  if (missing.length) {
    return {
      error:
        `volley has no price table for region ${region} (it has: ${Object.keys(PRICE_TABLES).join(', ')}): ` +
        `give that region's prices with init({ cost: { prices } }) (missing: ${missing.join(', ')}; see the AWS pricing pages of Lambda and S3), ` +
        "price the job at a listed region's rates with init({ cost: { region } }), or turn the cost count off with init({ cost: false })",
    };
  }
  const o = overrides!;
  return {
    table: {
      region: o.region ?? region,
      source: o.source ?? 'init({ cost: { prices } })',
      asOf: o.asOf ?? 'given',
      lambdaRequest: o.lambdaRequest!,
      lambdaGbSecond: { x86_64: o.lambdaGbSecond!.x86_64!, arm64: o.lambdaGbSecond!.arm64! },
      s3PutRequest: o.s3PutRequest!,
      s3GetRequest: o.s3GetRequest!,
      s3TransferOutPerGB: o.s3TransferOutPerGB!,
    },
  };
}
