/**
 * Prometheus metrics of a node, in a registry of its own (several nodes can share a process in
 * tests). Gauges read live values at scrape time; counters and histograms are fed by events.
 */
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Live values the metrics read at scrape time. */
export interface MetricsSource {
  height(): number;
  view(): number;
  peers(): number;
  mempool(): number;
  /** Consensus messages dropped so far, by reason. */
  votesDropped(): Record<string, number>;
  /** Gossip messages dropped by the network layer, by reason. */
  networkDropped(): Record<string, number>;
}

/** The node's metrics. */
export class NodeMetrics {
  readonly registry = new Registry();
  readonly viewChanges: Counter;
  readonly txsCommitted: Counter;
  readonly commitLatency: Histogram;
  readonly txLatency: Histogram;
  /** Rescans of the open requests by the extractor role. */
  readonly extractorRescans: Counter;
  /** (request, type) extractions a rescan re-ran, by `as`: assigned or fallback. */
  readonly extractorReruns: Counter<'as'>;
  /** (request, type) extractions not started because their record.put / record.fail was pending. */
  readonly extractorPendingSkips: Counter;

  constructor(source: MetricsSource) {
    const r = this.registry;
    new Gauge({
      name: 'datagrant_chain_height',
      help: 'Height of the last committed block',
      registers: [r],
      collect() {
        this.set(source.height());
      },
    });
    new Gauge({
      name: 'datagrant_consensus_view',
      help: 'Current consensus view',
      registers: [r],
      collect() {
        this.set(source.view());
      },
    });
    new Gauge({
      name: 'datagrant_p2p_peers',
      help: 'Connected validator peers',
      registers: [r],
      collect() {
        this.set(source.peers());
      },
    });
    new Gauge({
      name: 'datagrant_mempool_txs',
      help: 'Transactions waiting in the mempool',
      registers: [r],
      collect() {
        this.set(source.mempool());
      },
    });
    new Gauge({
      name: 'datagrant_consensus_messages_dropped_total',
      help: 'Consensus messages dropped, by reason (bad signature, unknown validator, other chain, stale view, malformed, ...)',
      labelNames: ['reason'],
      registers: [r],
      collect() {
        this.reset();
        for (const [reason, n] of Object.entries(source.votesDropped())) this.set({ reason }, n);
      },
    });
    new Gauge({
      name: 'datagrant_p2p_messages_dropped_total',
      help: 'Gossip messages dropped by the network layer, by reason',
      labelNames: ['reason'],
      registers: [r],
      collect() {
        this.reset();
        for (const [reason, n] of Object.entries(source.networkDropped())) this.set({ reason }, n);
      },
    });
    this.viewChanges = new Counter({
      name: 'datagrant_view_changes_total',
      help: 'Views entered after the first',
      registers: [r],
    });
    this.txsCommitted = new Counter({
      name: 'datagrant_txs_committed_total',
      help: 'Transactions committed',
      registers: [r],
    });
    this.commitLatency = new Histogram({
      name: 'datagrant_block_commit_latency_seconds',
      help: "From a block's proposal time to its local commit",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [r],
    });
    this.txLatency = new Histogram({
      name: 'datagrant_tx_commit_latency_seconds',
      help: "From admission to this node's mempool to commit, for transactions admitted here",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [r],
    });
    this.extractorRescans = new Counter({
      name: 'datagrant_extractor_rescans_total',
      help: 'Rescans of the open requests by the extractor role (at start-up and every few blocks)',
      registers: [r],
    });
    this.extractorReruns = new Counter({
      name: 'datagrant_extractor_reruns_total',
      help: 'Extractions a rescan re-ran because nothing was committed or pending for them, by whether this node is the assigned extractor or a fallback',
      labelNames: ['as'],
      registers: [r],
    });
    this.extractorPendingSkips = new Counter({
      name: 'datagrant_extractor_pending_skips_total',
      help: 'Extractions not started because a record.put or record.fail for the same request and type was already pending',
      registers: [r],
    });
  }

  /** Registers GET /metrics (Prometheus text format). */
  route(app: FastifyInstance): void {
    app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
      reply.header('content-type', this.registry.contentType);
      return this.registry.metrics();
    });
  }
}
