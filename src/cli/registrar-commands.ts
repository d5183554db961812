/**
 * `datagrant registrar serve | enroll | list`: the registrar's own machine. `enroll` hands out a
 * one-time code for a subject id after the operator has checked the person; `serve` runs the
 * attestation service that `datagrant register --registrar-url … --code …` asks, so the
 * registrar's key never leaves this machine (registrar/registrar-service.ts).
 */
import type { Command } from 'commander';
import { DatagrantError } from '../common/errors.js';
import { passphraseFrom } from './passphrase.js';

/**
 * `--valid` when not given: the service's DEFAULT_ENROLLMENT_MS (14 days), written out so that
 * defining the commands does not load the service (Fastify).
 */
const DEFAULT_VALID = '14d';

/** The registrar service's module, loaded by the commands that use it. */
function registrarService() {
  return import('../registrar/registrar-service.js');
}

function days(text: string): number {
  const m = /^(\d+)d$/.exec(text.trim());
  if (!m || Number(m[1]) < 1) throw new DatagrantError('CLI_USAGE', `bad validity ${text}: use e.g. 14d`);
  return Number(m[1]) * 86_400_000;
}

/** Adds `datagrant registrar …`. */
export function addRegistrarCommands(program: Command): void {
  const registrar = program
    .command('registrar')
    .description("a registrar's attestation service and its one-time enrollment codes");

  registrar
    .command('serve')
    .description(
      'serve attestations: POST /v1/attest with a subject id, its public keys and its enrollment code',
    )
    .requiredOption('--key <file>', "the registrar's key file (stays on this machine)")
    .requiredOption('--genesis <file>', "the chain's genesis.json (the key must be one of its registrars)")
    .requiredOption('--enrollments <file>', 'the enrollment file (`registrar enroll` writes it)')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on', '26850')
    .option('--passphrase-file <file>', 'passphrase of a sealed key file (or DATAGRANT_PASSPHRASE)')
    .option(
      '--allow-origin <origins>',
      'comma-separated origins whose pages (the portal) may call the service from a browser, or * for any',
      '*',
    )
    .action(
      async (o: {
        key: string;
        genesis: string;
        enrollments: string;
        host: string;
        port: string;
        passphraseFile?: string;
        allowOrigin: string;
      }) => {
        const [
          { bytesToHex },
          { readKeyFile },
          { readGenesis },
          { createLogger },
          { createRegistrarService, EnrollmentStore },
        ] = await Promise.all([
          import('../common/bytes.js'),
          import('../common/keyfile-fs.js'),
          import('../node/genesis-file.js'),
          import('../common/logger.js'),
          registrarService(),
        ]);
        const keys = await readKeyFile(o.key, await passphraseFrom(o));
        const genesis = await readGenesis(o.genesis);
        if (!genesis.registrars.includes(bytesToHex(keys.signing.publicKey)))
          process.stderr.write(
            'warning: this key is not among the genesis registrars: its attestations count only once the council adds it\n',
          );
        const logger = createLogger({ name: 'registrar' });
        const app = await createRegistrarService({
          chain: genesis.chain,
          keys,
          store: await EnrollmentStore.open(o.enrollments),
          logger,
          allowOrigins: o.allowOrigin
            .split(',')
            .map((origin) => origin.trim())
            .filter((origin) => origin.length > 0),
        });
        const url = await app.listen({ host: o.host, port: Number(o.port) });
        logger.info({ url, registrar: bytesToHex(keys.signing.publicKey) }, 'started');
        const stop = async () => {
          await app.close();
          logger.info('stopped');
          process.exit(0);
        };
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      },
    );

  registrar
    .command('enroll')
    .description('after checking the person: a one-time code for her subject id (only its hash is stored)')
    .requiredOption('--enrollments <file>', 'the enrollment file')
    .requiredOption('--subject <id>', 'the pseudonymous subject id assigned to her')
    .option('--valid <days>', 'how long the code is good for, e.g. 14d', DEFAULT_VALID)
    .option(
      '--recovery',
      'a recovery: the code attests new keys for a subject already registered (`datagrant recover`)',
    )
    .option('--json', 'print JSON')
    .action(
      async (o: {
        enrollments: string;
        subject: string;
        valid: string;
        recovery?: boolean;
        json?: boolean;
      }) => {
        const { EnrollmentStore } = await registrarService();
        const store = await EnrollmentStore.open(o.enrollments);
        const code = await store.enroll(o.subject, Date.now(), days(o.valid), o.recovery === true);
        process.stdout.write(
          o.json
            ? `${JSON.stringify({ subject: o.subject, code })}\n`
            : `subject ${o.subject}: one-time code ${code}\n`,
        );
      },
    );

  registrar
    .command('list')
    .description(
      'enrollments: subject, expiry, whether used (codes are not shown: only their hashes are kept)',
    )
    .requiredOption('--enrollments <file>', 'the enrollment file')
    .option('--json', 'print JSON')
    .action(async (o: { enrollments: string; json?: boolean }) => {
      const { EnrollmentStore } = await registrarService();
      const list = (await EnrollmentStore.open(o.enrollments)).list();
      process.stdout.write(
        o.json
          ? `${JSON.stringify(list, null, 2)}\n`
          : `${list.map((e) => `${e.subject}  until ${new Date(e.expires).toISOString()}  ${e.used ? `used ${new Date(e.used.at).toISOString()}` : 'open'}${e.failures ? `  ${e.failures} wrong codes` : ''}`).join('\n') || 'no enrollments'}\n`,
      );
    });
}
