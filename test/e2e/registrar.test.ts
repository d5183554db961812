/**
 * The registrar's attestation service, as its users run it: the operator enrolls a subject id
 * (`datagrant registrar enroll`) and runs `datagrant registrar serve` with the registrar's key on
 * its own machine; the subject runs `datagrant register --registrar-url … --code …` from a
 * directory that holds only her own key file, and is registered on the chain. A used, wrong or
 * foreign code is refused with a code; wrong codes lock the enrollment.
 */
import '../../src/common/polyfill.js';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdir, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import t from 'tap';
import { generateKeySet } from '../../src/common/keyfile.js';
import { writeKeyFile } from '../../src/common/keyfile-fs.js';
import { EnrollmentStore, MAX_CODE_FAILURES } from '../../src/registrar/registrar-service.js';
import { startDevNode } from '../helpers/dev-node.js';

const run = promisify(execFile);
const BIN = resolve('bin/datagrant.js');

async function cli(args: string[], cwd?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [BIN, ...args], { timeout: 60_000, ...(cwd ? { cwd } : {}) });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

t.test(
  'datagrant register through the registrar service, with no registrar key on her machine',
  async (t) => {
    const dev = await startDevNode(t, { chain: 'datagrant-registrar' });
    const { api, net } = dev;
    const enrollments = join(dev.dir, 'registrar', 'enrollments.json');
    await mkdir(join(dev.dir, 'registrar'));

    // The operator: enroll a subject, then serve.
    const enrolled = await cli([
      'registrar',
      'enroll',
      '--enrollments',
      enrollments,
      '--subject',
      'alice-r',
      '--json',
    ]);
    t.equal(enrolled.code, 0, `enroll exits 0 ${enrolled.stderr}`);
    const { code } = JSON.parse(enrolled.stdout) as { code: string };
    const serve: ChildProcess = spawn(
      process.execPath,
      [
        BIN,
        'registrar',
        'serve',
        '--key',
        net.keys.registrar,
        '--genesis',
        net.genesisPath,
        '--enrollments',
        enrollments,
        '--port',
        '0',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    t.teardown(() => serve.kill('SIGTERM'));
    const url = await new Promise<string>((done, fail) => {
      const lines = createInterface({ input: serve.stdout! });
      lines.on('line', (line) => {
        const record = JSON.parse(line) as { msg?: string; url?: string };
        if (record.msg === 'started' && record.url) done(record.url);
      });
      serve.once('exit', (c) => fail(new Error(`registrar serve exited ${c}`)));
    });

    // Enrolled while the service runs: it reads the file again before every attestation.
    const other = JSON.parse(
      (await cli(['registrar', 'enroll', '--enrollments', enrollments, '--subject', 'bob-r', '--json']))
        .stdout,
    ) as { code: string };

    // The subject: a directory with her key file and nothing else.
    const home = join(dev.dir, 'alice-home');
    await mkdir(home);
    await writeKeyFile(join(home, 'alice.json'), generateKeySet('alice'));
    const register = (subject: string, withCode: string) =>
      cli(
        [
          'register',
          '--key',
          'alice.json',
          '--subject',
          subject,
          '--registrar-url',
          url,
          '--code',
          withCode,
          '--api',
          api,
        ],
        home,
      );

    const wrongSubject = await register('alice-r', other.code);
    t.not(wrongSubject.code, 0, "another subject's code is refused");
    t.match(wrongSubject.stderr, /REGISTRAR_CODE_INVALID/);

    const registered = await register('alice-r', code);
    t.equal(registered.code, 0, `register exits 0 ${registered.stderr}`);
    t.match(
      registered.stdout,
      /registered alice-r \(tx [0-9a-f]{64}, height \d+\)/,
      'her subject.register committed',
    );
    t.same(await readdir(home), ['alice.json'], 'her machine held only her own key file');

    // Her used code tried again, while a guesser locks bob's enrollment (independent: run at once).
    const again = register('alice-r', code);

    // The registrar's key never left its machine: the CLI of the subject was never given it.
    t.notMatch(registered.stdout + registered.stderr, /registrar\.json/);

    // Wrong codes lock the enrollment (tried straight at the service, as a guesser would).
    for (let i = 0; i < MAX_CODE_FAILURES; i++) {
      const r = await fetch(`${url}/v1/attest`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          chain: net.genesis.chain,
          subject: 'bob-r',
          signKey: '1'.repeat(64),
          encKey: '2'.repeat(64),
          code: 'x'.repeat(22),
        }),
      });
      t.equal(r.status, 403, `wrong code ${i + 1}: 403`);
    }
    const locked = await register('bob-r', other.code);
    t.match(
      locked.stderr,
      /REGISTRAR_LOCKED/,
      `${MAX_CODE_FAILURES} wrong codes lock it, even against the right one`,
    );
    t.match((await again).stderr, /REGISTRAR_CODE_USED/, 'a code attests once');
    const store = await EnrollmentStore.open(enrollments);
    t.ok(store.list().find((e) => e.subject === 'alice-r')?.used, 'the use is on disk');
    t.notOk(JSON.stringify(store.list()).includes(code), 'the file holds no code, only hashes');

    // She loses her key: the registrar checks her again and gives her a recovery code; her new key
    // is bound to her id (subject.recover), on her audit trail, and the old key is no longer hers.
    const recoveryCode = (
      JSON.parse(
        (
          await cli([
            'registrar',
            'enroll',
            '--enrollments',
            enrollments,
            '--subject',
            'alice-r',
            '--recovery',
            '--json',
          ])
        ).stdout,
      ) as { code: string }
    ).code;
    await writeKeyFile(join(home, 'alice-new.json'), generateKeySet('alice-new'));
    const recovered = await cli(
      [
        'recover',
        '--key',
        'alice-new.json',
        '--subject',
        'alice-r',
        '--registrar-url',
        url,
        '--code',
        recoveryCode,
        '--api',
        api,
      ],
      home,
    );
    t.equal(recovered.code, 0, `recover exits 0 ${recovered.stderr}`);
    t.match(recovered.stdout, /recovered alice-r: new keys bound/, 'her new keys are bound to her id');
    const reused = await cli(
      [
        'register',
        '--key',
        'alice-new.json',
        '--subject',
        'alice-r',
        '--registrar-url',
        url,
        '--code',
        recoveryCode,
        '--api',
        api,
      ],
      home,
    );
    t.match(reused.stderr, /REGISTRAR_CODE_USED/, 'the recovery code attests once');
  },
);
