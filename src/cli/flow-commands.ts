/**
 * CLI commands of the business flow: identity registration, institution requests and
 * documents, the subject's grant / deny / refresh / revoke / pause / resume / erase, and the audit trail
 * verified offline against genesis.
 */
import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { DatagrantClient } from '../client/index.js';
import type { WrappedKey } from '../common/crypto.js';
import { DatagrantError, isDatagrantError } from '../common/errors.js';
import type { KeySet } from '../common/keyfile.js';
import type { LightClient, ViewFault } from '../ledger/light-client.js';
import type { TxProof } from '../ledger/proof.js';
import type { GrantState, InstitutionState, RequestState } from '../ledger/records.js';
import type { DataType } from '../ledger/tx.js';
import type { AuditEntry, RequestView } from '../platform/views.js';
import type { unwrapRecordKey } from '../records/record-crypto.js';
import type { AttestationAnswer } from '../registrar/registrar-service.js';
import { DATA_TYPES } from './ledger-lists.js';
import { passphraseFrom } from './passphrase.js';

const DEFAULT_API = process.env.DATAGRANT_API ?? 'http://127.0.0.1:26650';

/** Whether `keys` unwraps (with `unwrap`) a record's data key (wrapped to her under `context`). */
function opensWith(
  wrapped: WrappedKey,
  keys: KeySet,
  context: Uint8Array,
  unwrap: typeof unwrapRecordKey,
): boolean {
  try {
    unwrap(wrapped, keys.encryption.secretKey, context).fill(0);
    return true;
  } catch {
    return false;
  }
}

/** Parses durations like `90s`, `30m`, `12h`, `7d` into milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+)(s|m|h|d)$/.exec(text.trim());
  if (!m) throw new DatagrantError('CLI_USAGE', `bad duration ${text}: use e.g. 30m, 12h, 7d`);
  const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
  return Number(m[1]) * unit;
}

function parseTypes(text: string | undefined): DataType[] | undefined {
  if (!text) return undefined;
  const types = text.split(',').map((t) => t.trim());
  for (const t of types) {
    if (!(DATA_TYPES as readonly string[]).includes(t)) {
      throw new DatagrantError('CLI_USAGE', `unknown data type ${t}: one of ${DATA_TYPES.join(', ')}`);
    }
  }
  return types as DataType[];
}

async function keysFrom(o: { key: string; passphraseFile?: string }): Promise<KeySet> {
  const { readKeyFile } = await import('../common/keyfile-fs.js');
  return readKeyFile(o.key, await passphraseFrom(o));
}

async function chainId(api: string): Promise<string> {
  const { apiCall } = await import('./client.js');
  return (await apiCall<{ chain: string }>(api, 'GET', '/v1/status')).chain;
}

/** The bank client for an institution command: its keys and the chain's genesis, nothing from the node. */
async function institutionClient(o: {
  key: string;
  institution: string;
  genesis: string;
  passphraseFile?: string;
  api: string;
  previousKey?: string[];
}): Promise<DatagrantClient> {
  const [{ DatagrantClient }, { readGenesis }] = await Promise.all([
    import('../client/index.js'),
    import('../node/genesis-file.js'),
  ]);
  const [keys, genesis] = await Promise.all([keysFrom(o), readGenesis(o.genesis)]);
  const previous = await Promise.all(
    (o.previousKey ?? []).map(async (path) =>
      keysFrom({ key: path, ...(o.passphraseFile ? { passphraseFile: o.passphraseFile } : {}) }),
    ),
  );
  return new DatagrantClient({
    api: o.api,
    institution: o.institution,
    keys,
    genesis,
    ...(previous.length > 0 ? { previousKeys: previous } : {}),
  });
}

/** A subject's signed reads, as the light client's transport. */
function subjectGet(api: string, caller: { as: string; keys: KeySet }): (path: string) => Promise<unknown> {
  return async (path) => {
    const { signedApiCall } = await import('./client.js');
    return signedApiCall(api, 'GET', path, caller.as, caller.keys.signing.secretKey);
  };
}

/**
 * The grantee's X25519 key as the chain holds it, proven against genesis (on a chain without
 * provable state: as genesis names it, when it does). A subject must not wrap her data key to a
 * key a node made up.
 */
async function granteeKey(api: string, institution: string, light: LightClient): Promise<string> {
  const [{ apiCall }, { nodeLied }, { stateKey }] = await Promise.all([
    import('./client.js'),
    import('../ledger/light-client.js'),
    import('../ledger/records.js'),
  ]);
  const blame = { code: 'CLI_NODE_LIED', node: api };
  const proven = await light.provenEntry<InstitutionState>(
    (path) => apiCall(api, 'GET', path),
    `/v1/state/institutions/${institution}`,
    stateKey.institution(institution),
    blame,
  );
  if (proven) {
    const inst = proven.value;
    if (!inst?.active)
      throw new DatagrantError(
        'CLI_INSTITUTION_UNKNOWN',
        `${institution} is not an active institution on this chain`,
      );
    return inst.encKey;
  }
  const inst = await apiCall<{ encKey: string }>(api, 'GET', `/v1/institutions/${institution}`);
  const known = light.genesis.institutions.find((i) => i.institution === institution);
  if (known && known.encKey !== inst.encKey)
    throw nodeLied(blame, `gave a key for ${institution} that genesis does not`);
  return inst.encKey;
}

/**
 * Refuses (CLI_NODE_LIED) a request view that differs from the request and grant the chain holds
 * in anything the subject consents on or is shown; the faults are read twice before the node is
 * called a liar (a block may commit between the view and the proof).
 */
async function checkRequestView(
  api: string,
  light: LightClient,
  view: RequestView,
  caller: { as: string; keys: KeySet },
  reread: () => Promise<RequestView> = async () => view,
): Promise<RequestView> {
  const [{ nodeLied, requestViewFaults }, { stateKey }] = await Promise.all([
    import('../ledger/light-client.js'),
    import('../ledger/records.js'),
  ]);
  const blame = { code: 'CLI_NODE_LIED', node: api };
  const get = subjectGet(api, caller);
  let faults: ViewFault[] = [];
  for (let attempt = 0; attempt < 2; attempt++) {
    if (attempt > 0) view = await reread();
    const request = await light.provenEntry<RequestState>(
      get,
      `/v1/state/requests/${view.id}`,
      stateKey.request(view.id),
      blame,
    );
    if (!request) return view;
    const grantId = request.value?.grant;
    const grant = grantId
      ? await light.provenEntry<GrantState>(
          get,
          `/v1/state/grants/${grantId}`,
          stateKey.grant(grantId),
          blame,
        )
      : undefined;
    faults = requestViewFaults(view, request.value, grant?.value, {
      time: Math.min(request.time, grant?.time ?? request.time),
      now: Date.now(),
      policy: light.genesis.params.extraction ?? 'on-request',
    });
    if (faults.length === 0) return view;
  }
  throw nodeLied(
    blame,
    `showed request ${view.id} otherwise than the chain holds it (${faults.map((f) => f.what).join(', ')})`,
    {
      request: view.id,
      faults,
    },
  );
}

/** Runs every check, then throws all the lies found in one error (or the first other failure). */
async function allChecked<T extends unknown[]>(checks: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const settled = await Promise.allSettled(checks);
  const lies = settled.flatMap((r) =>
    r.status === 'rejected' && isDatagrantError(r.reason, 'CLI_NODE_LIED') ? [r.reason] : [],
  );
  if (lies.length > 1)
    throw new DatagrantError('CLI_NODE_LIED', lies.map((e) => e.message).join('; '), {
      lies: lies.map((e) => e.meta),
    });
  if (lies.length === 1) throw lies[0];
  for (const r of settled) if (r.status === 'rejected') throw r.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<unknown>).value) as T;
}

function out(json: boolean | undefined, value: unknown, text: string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${text}\n`);
}

const KEY_OPTS = [
  '--passphrase-file <file>',
  'passphrase of a sealed key file (or DATAGRANT_PASSPHRASE)',
] as const;

/**
 * Asks a registrar's attestation service (`datagrant registrar serve`) to attest `keys` for
 * `subject` with a one-time `code`, and checks the answer before anything is signed on its word: it
 * must be for this subject and verify over the registration bytes, or for a `recovery` over the
 * recovery bytes at the time it names (CLI_BAD_ATTESTATION otherwise).
 */
async function askRegistrar(
  url: string,
  chain: string,
  subject: string,
  keys: { signKey: string; encKey: string },
  code: string,
  recovery: boolean,
): Promise<AttestationAnswer> {
  const [{ fromHex }, { verify }, { attestationBytes, recoveryBytes }, { apiCall }] = await Promise.all([
    import('../common/bytes.js'),
    import('../common/crypto.js'),
    import('../ledger/state-machine.js'),
    import('./client.js'),
  ]);
  const answer = await apiCall<AttestationAnswer>(url, 'POST', '/v1/attest', {
    chain,
    subject,
    ...keys,
    code,
  });
  const bytes = recovery
    ? answer.recovery && recoveryBytes(chain, subject, keys.signKey, keys.encKey, answer.recovery.issued)
    : !answer.recovery && attestationBytes(chain, subject, keys.signKey, keys.encKey);
  if (
    !bytes ||
    answer.subject !== subject ||
    !verify(fromHex(answer.attestation, 'attestation', 64), bytes, fromHex(answer.registrar, 'registrar', 32))
  )
    throw new DatagrantError(
      'CLI_BAD_ATTESTATION',
      recovery
        ? "the registrar's answer is no recovery attestation of your keys"
        : "the registrar's attestation does not verify for your keys",
    );
  return answer;
}

/** The public halves of a key set, as the ledger names them (hex, by `bytesToHex`). */
function publicKeys(
  keys: KeySet,
  bytesToHex: (bytes: Uint8Array) => string,
): { signKey: string; encKey: string } {
  return { signKey: bytesToHex(keys.signing.publicKey), encKey: bytesToHex(keys.encryption.publicKey) };
}

/** Adds the flow commands to the program. */
export function addFlowCommands(program: Command): void {
  program
    .command('register')
    .description(
      "register a subject: the registrar attests the subject's keys, the subject signs subject.register",
    )
    .requiredOption('--key <file>', "the subject's key file")
    .requiredOption('--subject <id>', 'pseudonymous subject id assigned by the registrar')
    .option('--registrar-url <url>', "the registrar's attestation service (datagrant registrar serve)")
    .option('--code <code>', 'the one-time enrollment code the registrar gave you (with --registrar-url)')
    .option('--registrar-key <file>', "or, on the registrar's own machine, its key file")
    .option(...KEY_OPTS)
    .option('--api <url>', 'node API URL', DEFAULT_API)
    .option('--json', 'print JSON')
    .action(
      async (o: {
        key: string;
        subject: string;
        registrarKey?: string;
        registrarUrl?: string;
        code?: string;
        passphraseFile?: string;
        api: string;
        json?: boolean;
      }) => {
        const [{ bytesToHex }, { readKeyFile }, { attestSubject, buildRegisterTx }, { submitAndWait }] =
          await Promise.all([
            import('../common/bytes.js'),
            import('../common/keyfile-fs.js'),
            import('../platform/consent.js'),
            import('./client.js'),
          ]);
        const subject = await keysFrom(o);
        const chain = await chainId(o.api);
        const keys = publicKeys(subject, bytesToHex);
        let registrar: string;
        let attestation: string;
        if (o.registrarUrl !== undefined) {
          if (o.code === undefined) throw new DatagrantError('CLI_USAGE', '--registrar-url needs --code');
          ({ registrar, attestation } = await askRegistrar(
            o.registrarUrl,
            chain,
            o.subject,
            keys,
            o.code,
            false,
          ));
        } else if (o.registrarKey !== undefined) {
          const registrarKeys = await readKeyFile(o.registrarKey);
          registrar = bytesToHex(registrarKeys.signing.publicKey);
          attestation = attestSubject(chain, o.subject, keys, registrarKeys);
        } else {
          throw new DatagrantError(
            'CLI_USAGE',
            'give --registrar-url and --code (or, on the registrar, --registrar-key)',
          );
        }
        const tx = buildRegisterTx({ chain, now: Date.now() }, o.subject, subject, registrar, attestation);
        const r = await submitAndWait(o.api, tx);
        out(
          o.json,
          { subject: o.subject, ...r },
          `registered ${o.subject} (tx ${r.hash}, height ${r.height})`,
        );
      },
    );

  program
    .command('recover')
    .description(
      'subject: bind new keys to your subject id after losing yours, with a recovery code from your registrar (subject.recover)',
    )
    .requiredOption('--key <file>', 'your NEW key file (`datagrant keygen`)')
    .requiredOption('--subject <id>', 'your subject id')
    .requiredOption('--registrar-url <url>', "your registrar's attestation service")
    .requiredOption('--code <code>', 'the one-time recovery code the registrar gave you')
    .option(...KEY_OPTS)
    .option('--api <url>', 'node API URL', DEFAULT_API)
    .option('--json', 'print JSON')
    .action(
      async (o: {
        key: string;
        subject: string;
        registrarUrl: string;
        code: string;
        passphraseFile?: string;
        api: string;
        json?: boolean;
      }) => {
        const [{ bytesToHex }, { signTx }, { submitAndWait }] = await Promise.all([
          import('../common/bytes.js'),
          import('../ledger/tx-codec.js'),
          import('./client.js'),
        ]);
        const subject = await keysFrom(o);
        const chain = await chainId(o.api);
        const keys = publicKeys(subject, bytesToHex);
        const answer = await askRegistrar(o.registrarUrl, chain, o.subject, keys, o.code, true);
        const tx = signTx(
          {
            chain,
            kind: 'subject.recover',
            body: {
              subject: o.subject,
              encKey: keys.encKey,
              registrar: answer.registrar,
              attestation: answer.attestation,
              issued: answer.recovery!.issued,
            },
          },
          subject.signing.publicKey,
          subject.signing.secretKey,
        );
        const r = await submitAndWait(o.api, tx);
        out(
          o.json,
          { subject: o.subject, ...r },
          `recovered ${o.subject}: new keys bound (tx ${r.hash}, height ${r.height})`,
        );
      },
    );

  program
    .command('request')
    .description(
      "institution: ask for a subject's data (signs its own request.open; a platform node relays it)",
    )
    .requiredOption('--key <file>', "the institution's key file")
    .requiredOption('--institution <id>', 'institution id')
    .requiredOption('--genesis <file>', "the chain's genesis.json")
    .requiredOption('--subject <id>', 'subject id')
    .requiredOption('--types <list>', `comma-separated: ${DATA_TYPES.join(',')}`)
    .requiredOption('--purpose <text>', 'why the data is needed')
    .option('--format <format>', 'json, csv or xml', 'json')
    .option('--field <column=type.field...>', 'output column mapping (repeatable)')
    .option('--consent <duration>', 'time the subject has to decide', '7d')
    .option(...KEY_OPTS)
    .option('--api <url>', 'platform node API URL', DEFAULT_API)
    .option('--json', 'print JSON')
    .action(
      async (o: {
        key: string;
        institution: string;
        genesis: string;
        subject: string;
        types: string;
        purpose: string;
        format: string;
        field?: string[];
        consent: string;
        passphraseFile?: string;
        api: string;
        json?: boolean;
      }) => {
        const client = await institutionClient(o);
        const fields = Object.fromEntries(
          (o.field ?? []).map((f) => {
            const eq = f.indexOf('=');
            if (eq < 1) throw new DatagrantError('CLI_USAGE', `bad --field ${f}: use column=type.field`);
            return [f.slice(0, eq), f.slice(eq + 1)];
          }),
        );
        if (!['json', 'csv', 'xml'].includes(o.format))
          throw new DatagrantError('CLI_USAGE', `bad --format ${o.format}: json, csv or xml`);
        const view = await client.openRequest({
          subject: o.subject,
          types: parseTypes(o.types)!,
          purpose: o.purpose,
          format: o.format as 'json' | 'csv' | 'xml',
          fields,
          consentInMs: parseDuration(o.consent),
        });
        out(o.json, view, `request ${view.id} opened at height ${view.height}: ${view.status}`);
      },
    );

  program
    .command('requests')
    .description(
      'subject: list your requests awaiting a decision (a read signed with your key); with --genesis each request and its grant status is proven first',
    )
    .requiredOption('--key <file>', 'your key file')
    .requiredOption('--subject <id>', 'your subject id')
    .option('--all', 'every request, decided or not')
    .option(
      '--genesis <file>',
      "the chain's genesis.json: every request shown, and its grant's status, is proven against it",
    )
    .option(...KEY_OPTS)
    .option('--api <url>', 'platform node API URL', DEFAULT_API)
    .option('--json', 'print JSON')
    .action(
      async (o: {
        key: string;
        subject: string;
        all?: boolean;
        genesis?: string;
        passphraseFile?: string;
        api: string;
        json?: boolean;
      }) => {
        const { signedApiCall } = await import('./client.js');
        const keys = await keysFrom(o);
        const caller = { as: `subject:${o.subject}`, keys };
        const r = await signedApiCall<{ requests: RequestView[] }>(
          o.api,
          'GET',
          `/v1/subjects/${o.subject}/requests${o.all ? '?all=true' : ''}`,
          caller.as,
          keys.signing.secretKey,
        );
        let verified = false;
        if (o.genesis) {
          const [{ LightClient }, { readGenesis }] = await Promise.all([
            import('../ledger/light-client.js'),
            import('../node/genesis-file.js'),
          ]);
          const light = new LightClient(await readGenesis(o.genesis));
          r.requests = await allChecked<RequestView[]>(
            r.requests.map((view) =>
              checkRequestView(o.api, light, view, caller, () =>
                signedApiCall<RequestView>(
                  o.api,
                  'GET',
                  `/v1/requests/${view.id}`,
                  caller.as,
                  keys.signing.secretKey,
                ),
              ),
            ),
          );
          verified = light.provable;
        }
        const mark = verified ? '  verified' : '';
        out(
          o.json,
          o.genesis ? { ...r, verified } : r,
          r.requests.length === 0
            ? 'no requests'
            : r.requests
                .map(
                  (q) =>
                    `${q.id}  ${q.status}  ${q.institution}  ${q.types.join(',')}  "${q.purpose}"${q.grant ? `  uses ${q.grant.used}/${q.grant.uses}` : ''}${mark}`,
                )
                .join('\n'),
        );
      },
    );

  program
    .command('grant')
    .description(
      'subject: consent to a request with your key file (re-wraps each record key to the institution)',
    )
    .requiredOption('--key <file>', 'your key file')
    .requiredOption('--subject <id>', 'your subject id')
    .requiredOption('--request <id>', 'request id')
    .option('--types <list>', 'grant only these types (default: every extracted type)')
    .option('--expires <duration>', 'grant lifetime', '7d')
    .option('--uses <n>', 'how many document fetches are allowed', '1')
    .option('--retain-days <n>', 'how long the institution may keep the data', '30')
    .option('--data-from <date>', 'earliest date of the data (YYYY-MM-DD)')
    .option('--data-to <date>', 'latest date of the data (YYYY-MM-DD)')
    .requiredOption(
      '--genesis <file>',
      "the chain's genesis.json: the request and the grantee's key are proven against it",
    )
    .option(...KEY_OPTS)
    .option('--api <url>', 'node API URL', DEFAULT_API)
    .option('--json', 'print JSON')
    .action(
      async (o: {
        key: string;
        subject: string;
        request: string;
        genesis: string;
        types?: string;
        expires: string;
        uses: string;
        retainDays: string;
        dataFrom?: string;
        dataTo?: string;
        passphraseFile?: string;
        api: string;
        json?: boolean;
      }) => {
        const [{ LightClient }, { readGenesis }, { buildGrantTx }, { signedApiCall, submitAndWait }] =
          await Promise.all([
            import('../ledger/light-client.js'),
            import('../node/genesis-file.js'),
            import('../platform/consent.js'),
            import('./client.js'),
          ]);
        const keys = await keysFrom(o);
        const genesis = await readGenesis(o.genesis);
        const caller = { as: `subject:${o.subject}`, keys };
        const light = new LightClient(genesis);
        const read = () =>
          signedApiCall<RequestView>(
            o.api,
            'GET',
            `/v1/requests/${o.request}`,
            caller.as,
            keys.signing.secretKey,
          );
        const shown = await read();
        // Both facts are proven before anything is signed; every lie found is reported at once.
        const [view, encKey] = await allChecked<[RequestView, string]>([
          checkRequestView(o.api, light, shown, caller, read),
          granteeKey(o.api, shown.institution, light),
        ]);
        const types = parseTypes(o.types);
        const ctx = {
          chain: genesis.chain,
          now: Date.now(),
          extraction: genesis.params.extraction ?? 'on-request',
        };
        const tx = buildGrantTx(
          ctx,
          view,
          keys,
          { institution: view.institution, encKey },
          {
            ...(types ? { types } : {}),
            expiresInMs: parseDuration(o.expires),
            uses: Number(o.uses),
            retainDays: Number(o.retainDays),
            ...(o.dataFrom ? { dataFrom: o.dataFrom } : {}),
            ...(o.dataTo ? { dataTo: o.dataTo } : {}),
          },
        );
        const r = await submitAndWait(o.api, tx);
        out(
          o.json,
          { grant: r.hash, ...r },
          `granted ${tx.body.types.join(',')} to ${view.institution}: grant ${r.hash} at height ${r.height}`,
        );
      },
    );

  for (const kind of ['deny', 'erase'] as const) {
    program
      .command(kind)
      .description(
        kind === 'deny'
          ? 'subject: refuse a request'
          : "subject: erase a request's encrypted records on every node (the ledger keeps digests)",
      )
      .requiredOption('--key <file>', 'your key file')
      .requiredOption('--request <id>', 'request id')
      .option('--reason <text>', 'reason (deny only)')
      .option(...KEY_OPTS)
      .option('--api <url>', 'node API URL', DEFAULT_API)
      .option('--json', 'print JSON')
      .action(
        async (o: {
          key: string;
          request: string;
          reason?: string;
          passphraseFile?: string;
          api: string;
          json?: boolean;
        }) => {
          const [{ buildSubjectTx }, { submitAndWait }] = await Promise.all([
            import('../platform/consent.js'),
            import('./client.js'),
          ]);
          const keys = await keysFrom(o);
          const ctx = { chain: await chainId(o.api), now: Date.now() };
          const tx =
            kind === 'deny'
              ? buildSubjectTx(
                  ctx,
                  'deny',
                  { request: o.request, ...(o.reason ? { reason: o.reason } : {}) },
                  keys,
                )
              : buildSubjectTx(ctx, 'erase', { request: o.request }, keys);
          const r = await submitAndWait(o.api, tx);
          out(o.json, r, `${kind} committed: tx ${r.hash} at height ${r.height}`);
        },
      );
  }

  program
    .command('refresh')
    .description(
      'subject: after recovering your keys, have records of a request still sealed to your lost key extracted again, sealed to your new key (then grant them)',
    )
    .requiredOption('--key <file>', 'your current key file')
    .requiredOption('--subject <id>', 'your subject id')
    .requiredOption('--request <id>', 'request id')
    .option(
      '--types <list>',
      'refresh only these types (default: every record of the request your key cannot open)',
    )
    .option(...KEY_OPTS)
    .option('--api <url>', 'node API URL', DEFAULT_API)
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      '\nThe old records stay on the ledger, set aside and erased; the refresh is on your audit trail.\n' +
        'The request must still await your consent (before its deadline), or, on an on-consent chain,\n' +
        'be granted by a live grant. Once the new records are in (`datagrant requests --subject ...`),\n' +
        'grant them with `datagrant grant`.',
    )
    .action(
      async (o: {
        key: string;
        subject: string;
        request: string;
        types?: string;
        passphraseFile?: string;
        api: string;
        json?: boolean;
      }) => {
        const [{ signTx }, { recordContext, unwrapRecordKey }, { signedApiCall, submitAndWait }] =
          await Promise.all([
            import('../ledger/tx-codec.js'),
            import('../records/record-crypto.js'),
            import('./client.js'),
          ]);
        const keys = await keysFrom(o);
        const chain = await chainId(o.api);
        let types = parseTypes(o.types);
        if (!types) {
          const view = await signedApiCall<RequestView>(
            o.api,
            'GET',
            `/v1/requests/${o.request}`,
            `subject:${o.subject}`,
            keys.signing.secretKey,
          );
          // Stale: the records whose data key her current key does not unwrap.
          types = view.records
            .filter((r) => !opensWith(r.key, keys, recordContext(chain, o.request, r.type), unwrapRecordKey))
            .map((r) => r.type);
          if (types.length === 0)
            throw new DatagrantError(
              'CLI_NOTHING_TO_REFRESH',
              'every record of this request opens with your key: nothing to refresh',
            );
        }
        const tx = signTx(
          { chain, kind: 'record.refresh', body: { request: o.request, types } },
          keys.signing.publicKey,
          keys.signing.secretKey,
          Date.now(),
        );
        const r = await submitAndWait(o.api, tx);
        out(
          o.json,
          { ...r, types },
          `refresh committed: tx ${r.hash} at height ${r.height}; ${types.join(',')} will be extracted again, sealed to your current key`,
        );
      },
    );

  for (const kind of ['revoke', 'pause', 'resume'] as const) {
    program
      .command(kind)
      .description(`subject: ${kind} a grant`)
      .requiredOption('--key <file>', 'your key file')
      .option('--grant <id>', 'grant id')
      .option('--request <id>', 'or the request whose grant it is (with --subject)')
      .option('--subject <id>', 'your subject id (to read the request, with --request)')
      .option(...KEY_OPTS)
      .option('--api <url>', 'node API URL', DEFAULT_API)
      .option('--json', 'print JSON')
      .action(
        async (o: {
          key: string;
          grant?: string;
          request?: string;
          subject?: string;
          passphraseFile?: string;
          api: string;
          json?: boolean;
        }) => {
          const [{ buildSubjectTx }, { signedApiCall, submitAndWait }] = await Promise.all([
            import('../platform/consent.js'),
            import('./client.js'),
          ]);
          const keys = await keysFrom(o);
          let grant = o.grant;
          if (!grant && o.request) {
            if (!o.subject)
              throw new DatagrantError('CLI_USAGE', '--request needs --subject (your subject id)');
            const view = await signedApiCall<RequestView>(
              o.api,
              'GET',
              `/v1/requests/${o.request}`,
              `subject:${o.subject}`,
              keys.signing.secretKey,
            );
            grant = view.grant?.id;
          }
          if (!grant)
            throw new DatagrantError('CLI_USAGE', 'give --grant, or --request of a granted request');
          const tx = buildSubjectTx({ chain: await chainId(o.api), now: Date.now() }, kind, { grant }, keys);
          const r = await submitAndWait(o.api, tx);
          out(o.json, r, `${kind} committed: tx ${r.hash} at height ${r.height}`);
        },
      );
  }

  program
    .command('document')
    .description(
      'institution: record a use of a granted request, fetch its sealed bundle, verify it against genesis, decrypt and assemble it here',
    )
    .requiredOption('--key <file>', "the institution's key file")
    .requiredOption('--institution <id>', 'institution id')
    .requiredOption('--genesis <file>', "the chain's genesis.json")
    .requiredOption('--request <id>', 'request id')
    .option('--format <format>', 'json, csv or xml (default: as requested)')
    .option('--usage <tx>', 're-fetch the bundle of a usage already committed (spends nothing)')
    .option('--out <file>', 'write the document here instead of stdout')
    .option('--bundle-out <file>', 'also keep the sealed bundle (JSON, no plaintext) here')
    .option(
      '--previous-key <file>',
      'a key file the institution rotated away from, for grants made before (repeat)',
      (v: string, all: string[] = []) => [...all, v],
    )
    .option(...KEY_OPTS)
    .option('--api <url>', 'platform node API URL', DEFAULT_API)
    .action(
      async (o: {
        key: string;
        institution: string;
        genesis: string;
        request: string;
        format?: string;
        usage?: string;
        out?: string;
        bundleOut?: string;
        previousKey?: string[];
        passphraseFile?: string;
        api: string;
      }) => {
        if (o.format && !['json', 'csv', 'xml'].includes(o.format))
          throw new DatagrantError('CLI_USAGE', `bad --format ${o.format}: json, csv or xml`);
        const client = await institutionClient(o);
        const doc = await client.document(o.request, {
          ...(o.format ? { format: o.format as 'json' | 'csv' | 'xml' } : {}),
          ...(o.usage ? { usage: o.usage } : {}),
        });
        if (o.out) await writeFile(o.out, doc.body, { mode: 0o600 });
        else process.stdout.write(doc.body.endsWith('\n') ? doc.body : `${doc.body}\n`);
        if (o.bundleOut)
          await writeFile(o.bundleOut, JSON.stringify(doc.bundle.sealed, null, 2), { mode: 0o600 });
        process.stderr.write(
          `usage tx ${doc.usageTx} (height ${doc.usageHeight}), bundle ${doc.bundleDigest} verified against genesis, document sha256 ${doc.digest}, keep until ${new Date(doc.retainUntil).toISOString()}\n`,
        );
      },
    );

  program
    .command('audit')
    .description(
      "a subject's audit trail: every request, record, grant, usage and erasure, optionally verified offline",
    )
    .requiredOption('--key <file>', 'your key file (the trail is read with a call signed by it)')
    .requiredOption('--subject <id>', 'your subject id')
    .option('--verify', 'check every inclusion proof against --genesis, offline')
    .option('--genesis <file>', 'genesis.json of the chain (with --verify)')
    .option(...KEY_OPTS)
    .option('--api <url>', 'platform node API URL', DEFAULT_API)
    .option('--json', 'print JSON')
    .action(
      async (o: {
        key: string;
        subject: string;
        verify?: boolean;
        genesis?: string;
        passphraseFile?: string;
        api: string;
        json?: boolean;
      }) => {
        const { signedApiCall } = await import('./client.js');
        const keys = await keysFrom(o);
        const trail: { entries: AuditEntry[] } = { entries: [] };
        for (let after: number | undefined; ; ) {
          const page: { entries: AuditEntry[]; next?: number } = await signedApiCall(
            o.api,
            'GET',
            `/v1/subjects/${o.subject}/audit${after === undefined ? '' : `?after=${after}`}`,
            `subject:${o.subject}`,
            keys.signing.secretKey,
          );
          trail.entries.push(...page.entries);
          if (page.next === undefined) break;
          after = page.next;
        }
        let light: LightClient | undefined;
        if (o.verify) {
          const [{ LightClient }, { readGenesis }] = await Promise.all([
            import('../ledger/light-client.js'),
            import('../node/genesis-file.js'),
          ]);
          light = new LightClient(await readGenesis(o.genesis ?? ''));
        }
        let failures = 0;
        const rows = trail.entries.map((e) => {
          let verified: string | undefined;
          if (light) {
            const r = light.verifyTx(e.proof as TxProof);
            const ok = r.ok && r.hash === e.hash;
            if (!ok) failures++;
            verified = ok ? 'verified' : `FAILED ${r.ok ? 'PROOF_WRONG_TX' : r.code}`;
          }
          return { ...e, proof: undefined, verified };
        });
        out(
          o.json,
          { subject: o.subject, entries: rows, failures },
          [
            ...rows.map(
              (r) =>
                `${new Date(r.time).toISOString()}  h${String(r.height).padEnd(6)} ${r.kind.padEnd(16)} ${r.hash.slice(0, 16)}…${r.verified ? `  ${r.verified}` : ''}`,
            ),
            light
              ? `${rows.length - failures}/${rows.length} entries verified against genesis`
              : `${rows.length} entries`,
          ].join('\n'),
        );
        if (failures > 0)
          throw new DatagrantError('AUDIT_PROOF_FAILED', `${failures} audit entries failed verification`);
      },
    );
}
