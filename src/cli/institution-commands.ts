/**
 * `datagrant institution rotate`: an institution replaces its signing key, its encryption key or
 * both, signed with its current key (the new signing key signs a proof that it is held). Grants
 * made before keep working until they end (open their documents with `document --previous-key`);
 * new grants are wrapped to the new encryption key; requests opened before stay live.
 */
import type { Command } from 'commander';
import { DatagrantError } from '../common/errors.js';
import { passphraseFrom } from './passphrase.js';

const DEFAULT_API = process.env.DATAGRANT_API ?? 'http://127.0.0.1:26650';

/** Adds `datagrant institution …`. */
export function addInstitutionCommands(program: Command): void {
  program
    .command('institution')
    .description("an institution's own key management")
    .command('rotate')
    .description(
      'replace the signing key, the encryption key or both (keep the old key file for grants made before)',
    )
    .requiredOption('--key <file>', "the institution's current key file")
    .requiredOption('--new-key <file>', 'the key file to rotate to (`datagrant keygen`)')
    .requiredOption('--institution <id>', 'institution id')
    .option('--only <half>', 'rotate only the signing or the encryption key: sign | enc')
    .option('--passphrase-file <file>', 'passphrase of sealed key files (or DATAGRANT_PASSPHRASE)')
    .option('--api <url>', 'node API URL', DEFAULT_API)
    .option('--json', 'print JSON')
    .action(
      async (o: {
        key: string;
        newKey: string;
        institution: string;
        only?: string;
        passphraseFile?: string;
        api: string;
        json?: boolean;
      }) => {
        if (o.only !== undefined && o.only !== 'sign' && o.only !== 'enc')
          throw new DatagrantError('CLI_USAGE', '--only is sign or enc');
        const [
          { bytesToHex },
          { sign },
          { readKeyFile },
          { rotationProofBytes },
          { signTx },
          { apiCall, submitAndWait },
        ] = await Promise.all([
          import('../common/bytes.js'),
          import('../common/crypto.js'),
          import('../common/keyfile-fs.js'),
          import('../ledger/state-machine.js'),
          import('../ledger/tx-codec.js'),
          import('./client.js'),
        ]);
        const passphrase = await passphraseFrom(o);
        const [current, next] = await Promise.all([
          readKeyFile(o.key, passphrase),
          readKeyFile(o.newKey, passphrase),
        ]);
        const { chain } = await apiCall<{ chain: string }>(o.api, 'GET', '/v1/status');
        const signKey = bytesToHex(next.signing.publicKey);
        const withSign = o.only !== 'enc';
        const body = {
          institution: o.institution,
          ...(withSign
            ? {
                signKey,
                proof: bytesToHex(
                  sign(
                    rotationProofBytes(chain, o.institution, signKey, bytesToHex(current.signing.publicKey)),
                    next.signing.secretKey,
                  ),
                ),
              }
            : {}),
          ...(o.only !== 'sign' ? { encKey: bytesToHex(next.encryption.publicKey) } : {}),
        };
        const tx = signTx(
          { chain, kind: 'institution.rotate', body },
          current.signing.publicKey,
          current.signing.secretKey,
        );
        const r = await submitAndWait(o.api, tx);
        process.stdout.write(
          o.json
            ? `${JSON.stringify({ ...r, institution: o.institution })}\n`
            : `rotated ${o.institution}'s ${withSign ? (o.only === 'sign' ? 'signing key' : 'keys') : 'encryption key'} (tx ${r.hash}, height ${r.height}); keep ${o.key} for grants made before\n`,
        );
      },
    );
}
