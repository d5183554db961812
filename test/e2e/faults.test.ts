/**
 * The fault suite, short: four real node processes under business-flow and plain-transaction
 * load, one of them Byzantine for a while (equivocation, double votes, bad signatures, floods,
 * replays; paused and cut off), then every kind of honest fault once: the primary SIGKILLed,
 * a disk failure, an extractor's payload store destroyed, a SIGSTOP pause, a two-against-two
 * partition, a request erased while a node is down, record.put transactions dropped on the way out,
 * payload writes lost or torn. Afterwards every node must hold
 * the same blocks, every acknowledged transaction, every grant and usage (on audit trails read
 * with the subject's own key; every read in the flows is signed by its party), and no anomaly.
 * Faults are held for less time than in the long run (FAULTS_PACE, default 0.4 of its holds; 1
 * holds them as long), each still long enough to bite: a partition or pause outlasts a view timeout.
 * The long, random version is `npm run faults` (FAULTS_SEED replays a schedule).
 */
import t from 'tap';
import { formatReport, runFaultSuite } from '../../scripts/faults.js';

const SEED = process.env.FAULTS_SEED ?? `test-${Date.now()}`;
const PACE = Number(process.env.FAULTS_PACE ?? 0.4);

t.test(
  'fault suite (short): no anomaly under crashes, pauses, partitions, disk failure and a Byzantine peer',
  async (t) => {
    const lines: string[] = [];
    const report = await runFaultSuite({
      durationMs: 0,
      seed: SEED,
      pace: PACE,
      schedule: {
        byzantine: ['pause', 'partition-one'],
        honest: [
          'kill-primary',
          'disk-fail',
          'extractor-disk-lost',
          'record-put-dropped',
          'payload-writes-lost',
          'payload-writes-torn',
          'pause',
          'partition-pair',
          'erase-while-down',
        ],
      },
      log: (line) => lines.push(line),
    });
    t.comment(lines.join('\n'));
    t.comment(formatReport(report, 0));
    t.same(report.anomalies, [], `no anomalies (seed ${SEED}, pace ${PACE})`);
    t.ok((report.faults.sigkill ?? 0) >= 2, 'nodes were SIGKILLed (the primary among them)');
    t.equal(report.faults['disk-fail'], 1, 'a disk failed');
    t.equal(report.faults.sigstop, 2, 'nodes were paused');
    t.equal(report.faults['partition-one'], 1, 'a node was cut off');
    t.equal(report.faults['partition-pair'], 1, 'the network was split in two halves');
    t.equal(report.faults['extractor-disk-lost'], 1, "an extractor's payload store was destroyed");
    t.equal(report.faults['erase-while-down'], 1, 'a request was erased while a node was down');
    for (const kind of ['record-put-dropped', 'payload-writes-lost', 'payload-writes-torn']) {
      t.equal(report.faults[kind], 1, `${kind} was armed`);
      t.ok(
        (report.detected[`injected:${kind}`] ?? 0) >= 1,
        `and hit (${report.detected[`injected:${kind}`]})`,
      );
    }
    t.ok((report.checks['erased-payloads-gone'] ?? 0) >= 4, 'no node holds the erased payloads');
    t.ok((report.checks['bundles-refetched'] ?? 0) >= 1, 'records stayed available after the disk loss');
    t.ok((report.checks['requests-checked-not-stuck'] ?? 0) >= 1, 'no request was left waiting for data');
    t.ok((report.detected['consensus:equivocation'] ?? 0) > 0, 'honest nodes caught the equivocations');
    t.ok((report.detected['consensus:bad-signature'] ?? 0) > 0, 'honest nodes dropped the bad signatures');
    t.ok((report.detected['consensus:malformed'] ?? 0) > 0, 'honest nodes dropped the flood');
    t.ok(
      (report.checks['heights-compared'] ?? 0) > 0,
      `blocks compared at ${report.checks['heights-compared']} heights`,
    );
    t.ok(
      (report.checks['acknowledged-txs'] ?? 0) > 10,
      `${report.checks['acknowledged-txs']} acknowledged txs checked on every node`,
    );
    t.ok(
      (report.load['flows-completed'] ?? 0) >= 1,
      `${report.load['flows-completed']} business flows completed`,
    );
    t.equal(
      report.checks['flows-audited'],
      report.load['flows-completed'],
      "every completed flow found on every platform node's audit trail, read with the subject's key",
    );
    t.ok(
      (report.checks['unsigned-reads-refused'] ?? 0) >= 3 &&
        (report.checks['subject-txs-redacted'] ?? 0) >= 1,
      'unsigned reads of her trail, pending list and request refused; her grant redacted for anonymous readers',
    );
  },
);
