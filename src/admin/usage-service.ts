import type { ServiceImpl } from '@connectrpc/connect';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { UsageService, type GetUsageRequest, type UsageEntrySchema } from '../../gen/s3o/admin/v1/usage_pb.js';
import type { UsageEntry, UsageReports } from '../core/usage-report.js';
import type { Logger } from '../log.js';
import { controlToConnect } from './backends-service.js';

/**
 * s3o.admin.v1.UsageService over core/usage-report.ts. Errors go through the control-plane mapping
 * (INVALID_ARGUMENT with a FieldViolation, NOT_FOUND).
 */

function u64(n: number): bigint {
  return BigInt(Math.max(0, Math.trunc(n)));
}

function entryToWire(e: UsageEntry): MessageInitShape<typeof UsageEntrySchema> {
  return {
    name: e.name,
    storedBytes: u64(e.storedBytes),
    storedObjects: u64(e.storedObjects),
    months: e.months.map((m) => ({
      month: m.month,
      requestsA: u64(m.requestsA),
      requestsB: u64(m.requestsB),
      bytesIn: u64(m.bytesIn),
      bytesOut: u64(m.bytesOut),
    })),
  };
}

export class UsageServiceImpl implements ServiceImpl<typeof UsageService> {
  readonly #reports: UsageReports;
  readonly #log: Logger;

  constructor(reports: UsageReports, log: Logger) {
    this.#reports = reports;
    this.#log = log;
  }

  async getUsage(req: GetUsageRequest) {
    try {
      const r = await this.#reports.get({
        ...(req.backend !== '' ? { backend: req.backend } : {}),
        ...(req.bucket !== '' ? { bucket: req.bucket } : {}),
        ...(req.fromMonth !== '' ? { fromMonth: req.fromMonth } : {}),
        ...(req.toMonth !== '' ? { toMonth: req.toMonth } : {}),
      });
      return { fromMonth: r.fromMonth, toMonth: r.toMonth, backends: r.backends.map(entryToWire), buckets: r.buckets.map(entryToWire) };
    } catch (err) {
      throw controlToConnect(err, this.#log, 'GetUsage');
    }
  }
}
