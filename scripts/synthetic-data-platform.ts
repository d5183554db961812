/**
 * A SYNTHETIC public data platform for demos and tests: an HTTP server that answers like a
 * government data platform (social insurance, tax, housing fund, property) with records
 * GENERATED deterministically from a seed and the pseudonymous subject id. No real person and
 * no real government record is behind any answer; every response says so (`synthetic: true`).
 *
 *   node --import tsx scripts/synthetic-data-platform.ts --port 0
 *     prints one JSON line: {"url":"http://127.0.0.1:PORT","synthetic":true,...}
 *   node --import tsx scripts/synthetic-data-platform.ts emit-csv --type tax --subjects a-1,b-2 --out tax.csv
 *
 * Routes: `GET /v1/:type/:subject?from=YYYY-MM-DD&to=YYYY-MM-DD`, `GET /health`, `GET /`.
 * Every data answer is signed like a real source's (the `http-json` plugin's `signature`): the
 * `datagrant-source-signature` header carries the time and the platform's Ed25519 signature over
 * the source statement of the exact body bytes. The key is the one given (`sourceKey`, or
 * `--key-file`), else a fresh one per start; `GET /` and the started platform's `source` name its
 * id and public key, and `syntheticSourceConfig(platform)` carries them to `datagrant init`, which
 * registers them in genesis.
 * Subjects whose id starts with `unknown-` have no records (404), for not-found paths.
 * Faults (`down`, `slowMs`, `garbage`, `flaky`) can be injected per data type for tests.
 */
import { realpathSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { Command } from 'commander';
import Fastify, { type FastifyInstance } from 'fastify';
import { bytesToHex, utf8ToBytes } from '../src/common/bytes.js';
import { generateSigningKeyPair, type SigningKeyPair, sha256, sha256Hex } from '../src/common/crypto.js';
import { decodeKeyFile } from '../src/common/keyfile.js';
import { DATA_TYPES, type DataType } from '../src/ledger/tx.js';
import { formatCsv } from '../src/plugins/csv-format.js';
import {
  type DataSourceConfig,
  DEFAULT_SIGNATURE_HEADER,
  type HttpJsonSourceConfig,
  signatureHeaderValue,
} from '../src/plugins/index.js';
import { signSourceStatement } from '../src/records/source-statement.js';

/** Stated in every answer: nothing here is real. */
export const SYNTHETIC_NOTICE =
  'SYNTHETIC DATA: generated for demos and tests by datagrant; no real person or government record is behind it';

/** Seed used when none is given. */
export const DEFAULT_SYNTHETIC_SEED = 'datagrant-synthetic-v1';

/** The fixed "today" of generated records, so answers never depend on the wall clock. */
export const DEFAULT_SYNTHETIC_AS_OF = '2025-06-30';

/** Subject ids with this prefix have no records at the synthetic platform. */
export const UNKNOWN_SUBJECT_PREFIX = 'unknown-';

/** One generated record: flat scalars only (amounts in whole yuan, areas in whole square metres). */
export type SyntheticRecord = Record<string, string | number | boolean>;

/** Options that shape generated records. */
export interface SyntheticRecordOptions {
  /** Seed of the generator (default `DEFAULT_SYNTHETIC_SEED`). */
  seed?: string;
  /** The generator's "today", YYYY-MM-DD (default `DEFAULT_SYNTHETIC_AS_OF`). */
  asOf?: string;
  /** Period asked for, YYYY-MM-DD; defaults to the twelve months up to `asOf`. */
  from?: string;
  to?: string;
}

const SUBJECT_RE = /^[a-z0-9][a-z0-9-]{2,63}$/;
const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;

// A counter-mode SHA-256 stream: the same (seed, subject, label) always yields the same numbers.
class SyntheticRandom {
  readonly #prefix: string;
  #counter = 0;
  #pool: Uint8Array = new Uint8Array(0);
  #offset = 0;

  constructor(seed: string, subject: string, label: string) {
    this.#prefix = `datagrant/synthetic/v1|${seed}|${subject}|${label}|`;
  }

  #byte(): number {
    if (this.#offset >= this.#pool.length) {
      this.#pool = sha256(utf8ToBytes(this.#prefix + this.#counter++));
      this.#offset = 0;
    }
    return this.#pool[this.#offset++]!;
  }

  /** Uniform integer in [min, max]. */
  int(min: number, max: number): number {
    const span = max - min + 1;
    let n = 0;
    for (let i = 0; i < 6; i++) n = n * 256 + this.#byte();
    return min + (n % span);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)]!;
  }

  digits(count: number): string {
    let out = '';
    for (let i = 0; i < count; i++) out += String(this.int(0, 9));
    return out;
  }
}

interface Region {
  code: string;
  province: string;
  provinceShort: string;
  city: string;
  district: string;
  minBase: number;
  pricePerM2: number;
}

const REGIONS: readonly Region[] = [
  {
    code: '370102',
    province: '山东省',
    provinceShort: '鲁',
    city: '济南市',
    district: '历下区',
    minBase: 4200,
    pricePerM2: 16000,
  },
  {
    code: '370202',
    province: '山东省',
    provinceShort: '鲁',
    city: '青岛市',
    district: '市南区',
    minBase: 4300,
    pricePerM2: 28000,
  },
  {
    code: '370602',
    province: '山东省',
    provinceShort: '鲁',
    city: '烟台市',
    district: '芝罘区',
    minBase: 3900,
    pricePerM2: 11000,
  },
  {
    code: '110105',
    province: '北京市',
    provinceShort: '京',
    city: '北京市',
    district: '朝阳区',
    minBase: 6800,
    pricePerM2: 62000,
  },
  {
    code: '310115',
    province: '上海市',
    provinceShort: '沪',
    city: '上海市',
    district: '浦东新区',
    minBase: 7300,
    pricePerM2: 65000,
  },
  {
    code: '440305',
    province: '广东省',
    provinceShort: '粤',
    city: '深圳市',
    district: '南山区',
    minBase: 5300,
    pricePerM2: 90000,
  },
  {
    code: '330106',
    province: '浙江省',
    provinceShort: '浙',
    city: '杭州市',
    district: '西湖区',
    minBase: 4800,
    pricePerM2: 42000,
  },
  {
    code: '510107',
    province: '四川省',
    provinceShort: '川',
    city: '成都市',
    district: '武侯区',
    minBase: 4100,
    pricePerM2: 19000,
  },
];

const SURNAMES = '王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘';
const GIVEN =
  '伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彬文博思远嘉怡宇航晨曦子涵';
const COMPANY_WORDS = ['泰和', '华信', '恒通', '瑞丰', '海川', '鼎盛', '诚达', '远景', '明德', '启航'];
const INDUSTRIES = [
  '科技',
  '物流',
  '建设工程',
  '信息技术',
  '食品',
  '医药',
  '机械制造',
  '商贸',
  '文化传媒',
  '新能源',
];
const ROADS = [
  '经十路',
  '泉城路',
  '解放路',
  '人民路',
  '和平路',
  '建设路',
  '文化路',
  '长江路',
  '黄河路',
  '中山路',
];
const ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK = '10X98765432';

/** The check character of an 18-character Chinese resident ID number (ISO 7064 MOD 11-2) for its first 17 digits. */
export function nationalIdCheckChar(first17: string): string {
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += Number(first17[i]) * ID_WEIGHTS[i]!;
  return ID_CHECK[sum % 11]!;
}

/** True when `id` has the 18-character format (17 digits and a valid check character). */
export function isNationalIdFormat(id: string): boolean {
  return /^\d{17}[\dX]$/.test(id) && nationalIdCheckChar(id.slice(0, 17)) === id[17];
}

/** A generated person (shared by all four record types of one subject). */
export interface SyntheticPerson {
  name: string;
  /** FAKE national ID in the 18-character format, for realism only. */
  nationalId: string;
  gender: 'male' | 'female';
  birthDate: string;
  region: Region;
  employer: string;
  address: string;
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** The generated person behind a subject id. */
export function syntheticPerson(seed: string, subject: string): SyntheticPerson {
  const rng = new SyntheticRandom(seed, subject, 'person');
  const name =
    rng.pick([...SURNAMES]) + rng.pick([...GIVEN]) + (rng.int(0, 2) > 0 ? rng.pick([...GIVEN]) : '');
  const gender = rng.int(0, 1) === 1 ? 'male' : 'female';
  const birthYear = rng.int(1965, 2000);
  const birthDate = `${birthYear}-${pad(rng.int(1, 12))}-${pad(rng.int(1, 28))}`;
  const region = rng.pick(REGIONS);
  // The 17th digit is odd for men and even for women.
  const sequence = rng.int(0, 499) * 2 + (gender === 'male' ? 1 : 0);
  const first17 = region.code + birthDate.replaceAll('-', '') + pad(sequence, 3);
  const nationalId = first17 + nationalIdCheckChar(first17);
  const employer = `${region.city.replace('市', '')}${rng.pick(COMPANY_WORDS)}${rng.pick(INDUSTRIES)}有限公司`;
  const address =
    `${region.province === region.city ? '' : region.province}${region.city}${region.district}` +
    `${rng.pick(ROADS)}${rng.int(1, 399)}号${rng.int(1, 30)}号楼${rng.int(1, 4)}单元${rng.int(1, 33)}0${rng.int(1, 4)}室`;
  return { name, nationalId, gender, birthDate, region, employer, address };
}

function parseDay(text: string, field: string): { y: number; m: number; d: number } {
  const match = DATE_RE.exec(text);
  const y = Number(match?.[1]);
  const m = Number(match?.[2]);
  const d = Number(match?.[3]);
  if (!match || m < 1 || m > 12 || d < 1 || d > 31)
    throw new RangeError(`${field} must be a date YYYY-MM-DD`);
  return { y, m, d };
}

const monthIndex = (y: number, m: number) => y * 12 + (m - 1);
const monthText = (index: number) => `${Math.floor(index / 12)}-${pad((index % 12) + 1)}`;

function overlap(a0: number, a1: number, b0: number, b1: number): number {
  return Math.max(0, Math.min(a1, b1) - Math.max(a0, b0) + 1);
}

const IIT_BRACKETS: readonly [number, number, number][] = [
  [36_000, 3, 0],
  [144_000, 10, 2_520],
  [300_000, 20, 16_920],
  [420_000, 25, 31_920],
  [660_000, 30, 52_920],
  [960_000, 35, 85_920],
  [Number.POSITIVE_INFINITY, 45, 181_920],
];

function incomeTax(taxable: number): number {
  if (taxable <= 0) return 0;
  const [, rate, quick] = IIT_BRACKETS.find(([limit]) => taxable <= limit)!;
  return Math.round((taxable * rate) / 100 - quick);
}

/**
 * The generated record of one type for a subject, or undefined for `unknown-*` subjects.
 * Throws RangeError on malformed dates or an empty period.
 */
export function syntheticRecord(
  subject: string,
  type: DataType,
  options: SyntheticRecordOptions = {},
): SyntheticRecord | undefined {
  if (subject.startsWith(UNKNOWN_SUBJECT_PREFIX)) return undefined;
  const seed = options.seed ?? DEFAULT_SYNTHETIC_SEED;
  const asOf = parseDay(options.asOf ?? DEFAULT_SYNTHETIC_AS_OF, 'asOf');
  const asOfIdx = monthIndex(asOf.y, asOf.m);
  const toDay = options.to === undefined ? asOf : parseDay(options.to, 'to');
  const fromDay = options.from === undefined ? undefined : parseDay(options.from, 'from');
  const periodTo = Math.min(monthIndex(toDay.y, toDay.m), asOfIdx);
  const periodFrom = fromDay === undefined ? periodTo - 11 : monthIndex(fromDay.y, fromDay.m);
  if (periodFrom > periodTo) throw new RangeError('from must not be after to');

  const person = syntheticPerson(seed, subject);
  const work = new SyntheticRandom(seed, subject, 'work');
  const birthYear = Number(person.birthDate.slice(0, 4));
  const earliest = Math.max(monthIndex(birthYear + 21, 7), monthIndex(2000, 1));
  const insuredFrom = Math.min(earliest + work.int(0, 60), asOfIdx - 12);
  const gapMonths = work.int(0, 6);
  const contributionMonths = Math.max(1, asOfIdx - insuredFrom + 1 - gapMonths);
  const monthlyBase = Math.round((person.region.minBase + work.int(0, 24_000)) / 10) * 10;
  const periodMonths = overlap(periodFrom, periodTo, insuredFrom, asOfIdx);
  const base = { name: person.name, nationalId: person.nationalId };

  switch (type) {
    case 'social-insurance': {
      const rng = new SyntheticRandom(seed, subject, type);
      return {
        ...base,
        city: person.region.city,
        employer: person.employer,
        insuredSince: monthText(insuredFrom),
        status: rng.int(0, 19) === 0 ? 'suspended' : 'active',
        contributionMonths,
        monthlyBase,
        monthlyContribution: Math.round(monthlyBase * 0.105),
        employerMonthlyContribution: Math.round(monthlyBase * 0.235),
        periodFrom: monthText(periodFrom),
        periodTo: monthText(periodTo),
        periodMonths,
        lastPaidMonth: monthText(asOfIdx),
      };
    }
    case 'tax': {
      const rng = new SyntheticRandom(seed, subject, type);
      // The latest tax year that ended within the period.
      const taxYear = periodTo % 12 === 11 ? Math.floor(periodTo / 12) : Math.floor(periodTo / 12) - 1;
      const annualIncome = monthlyBase * 12 + Math.round(rng.int(0, monthlyBase * 3) / 100) * 100;
      const socialDeduction = Math.round(monthlyBase * 0.105) * 12;
      const specialDeduction = rng.pick([0, 12_000, 24_000, 36_000, 48_000]);
      const taxableIncome = Math.max(0, annualIncome - 60_000 - socialDeduction - specialDeduction);
      return {
        ...base,
        taxYear,
        employer: person.employer,
        annualIncome,
        socialInsuranceDeduction: socialDeduction,
        specialAdditionalDeduction: specialDeduction,
        taxableIncome,
        taxPaid: incomeTax(taxableIncome),
        filingStatus: 'settled',
      };
    }
    case 'housing-fund': {
      const rng = new SyntheticRandom(seed, subject, type);
      const monthlyDeposit = Math.round(monthlyBase * 0.12) * 2;
      const depositMonths = Math.max(1, contributionMonths - rng.int(0, 12));
      const withdrawn = rng.int(0, 2) === 0 ? rng.int(0, depositMonths) * monthlyDeposit : 0;
      return {
        ...base,
        accountNo: `${person.region.code.slice(0, 4)}${rng.digits(8)}`,
        employer: person.employer,
        depositBase: monthlyBase,
        monthlyDeposit,
        depositMonths,
        balance: Math.max(0, depositMonths * monthlyDeposit - withdrawn),
        periodDeposits: overlap(periodFrom, periodTo, asOfIdx - depositMonths + 1, asOfIdx) * monthlyDeposit,
        status: 'normal',
        lastDepositMonth: monthText(asOfIdx),
      };
    }
    case 'property': {
      const rng = new SyntheticRandom(seed, subject, type);
      const registeredYear = rng.int(Math.max(2005, birthYear + 23), asOf.y);
      const floorAreaM2 = rng.int(45, 180);
      return {
        ...base,
        certificateNo: `${person.region.provinceShort}(${registeredYear})${person.region.city.replace('市', '')}市不动产权第${rng.digits(7)}号`,
        address: person.address,
        floorAreaM2,
        usage: 'residential',
        ownership: rng.int(0, 2) === 0 ? 'joint' : 'sole',
        registeredOn: `${registeredYear}-${pad(rng.int(1, 12))}-${pad(rng.int(1, 28))}`,
        assessedValue: floorAreaM2 * Math.round((person.region.pricePerM2 * rng.int(80, 120)) / 100),
        mortgaged: rng.int(0, 1) === 1,
      };
    }
  }
}

/** All four generated records of a subject (default period), or undefined for `unknown-*` subjects. */
export function syntheticRecords(
  subject: string,
  options: SyntheticRecordOptions = {},
): Record<DataType, SyntheticRecord> | undefined {
  if (subject.startsWith(UNKNOWN_SUBJECT_PREFIX)) return undefined;
  return Object.fromEntries(DATA_TYPES.map((t) => [t, syntheticRecord(subject, t, options)!])) as Record<
    DataType,
    SyntheticRecord
  >;
}

/**
 * The plaintext values of a subject that must never appear on the ledger, in logs or on the wire
 * unencrypted: name, national ID, employer, address, account and certificate numbers, and every
 * amount of six digits or more (shorter numbers would match unrelated text by chance).
 */
export function syntheticSensitiveValues(subject: string, options: SyntheticRecordOptions = {}): string[] {
  const records = syntheticRecords(subject, options);
  if (records === undefined) return [];
  const identifying = new Set(['name', 'nationalId', 'employer', 'address', 'accountNo', 'certificateNo']);
  const out = new Set<string>();
  for (const record of Object.values(records)) {
    for (const [key, value] of Object.entries(record)) {
      if (identifying.has(key) && typeof value === 'string') out.add(value);
      if (typeof value === 'number' && Math.abs(value) >= 100_000) out.add(String(value));
    }
  }
  return [...out];
}

const SAMPLE_SUBJECT = 'synthetic-sample';

/** Field names of generated records of one type (the same for every subject). */
export function syntheticFieldNames(type: DataType): string[] {
  return Object.keys(syntheticRecord(SAMPLE_SUBJECT, type)!);
}

/** Id of the synthetic platform as a signing source, unless told otherwise. */
export const DEFAULT_SYNTHETIC_SOURCE_ID = 'synthetic-platform';

/** Who signs a synthetic platform's answers: its source id and Ed25519 public key (hex). */
export interface SyntheticSigner {
  id: string;
  key: string;
}

/**
 * `http-json` source config for a running synthetic platform: one source serving all four
 * types, every generated field mapped from `data.<field>`. Given the platform itself (or its
 * url and `source`), the config reads its signatures and names its key, so `datagrant init`
 * registers it in genesis; given a bare URL, its signatures are ignored.
 */
export function syntheticSourceConfig(
  platform: string | { url: string; source?: SyntheticSigner },
  name = 'synthetic-platform',
): HttpJsonSourceConfig {
  const url = typeof platform === 'string' ? platform : platform.url;
  const signer = typeof platform === 'string' ? undefined : platform.source;
  const fieldsByType = Object.fromEntries(
    DATA_TYPES.map((t) => [t, Object.fromEntries(syntheticFieldNames(t).map((f) => [f, `data.${f}`]))]),
  );
  return {
    kind: 'http-json',
    name,
    url: `${url.replace(/\/$/, '')}/v1/{type}/{subject}?from={dataFrom}&to={dataTo}`,
    dataTypes: [...DATA_TYPES],
    fieldsByType,
    healthUrl: `${url.replace(/\/$/, '')}/health`,
    ...(signer === undefined ? {} : { signature: { source: signer.id, key: signer.key } }),
  };
}

/** CSV text (header `subject`, then the generated fields) of one type for the given subjects. */
export function syntheticCsv(
  type: DataType,
  subjects: readonly string[],
  options: SyntheticRecordOptions = {},
): string {
  const names = syntheticFieldNames(type);
  const rows: string[][] = [['subject', ...names]];
  for (const subject of subjects) {
    const record = syntheticRecord(subject, type, options);
    if (record !== undefined) rows.push([subject, ...names.map((n) => String(record[n]))]);
  }
  return formatCsv(rows);
}

/** `csv` source config matching `syntheticCsv` output, with numbers and booleans converted back. */
export function syntheticCsvSourceConfig(type: DataType, path: string, name?: string): DataSourceConfig {
  const sample = syntheticRecord(SAMPLE_SUBJECT, type)!;
  const fields = Object.fromEntries(
    Object.entries(sample).map(([f, v]) => [
      f,
      {
        column: f,
        as:
          typeof v === 'number'
            ? ('integer' as const)
            : typeof v === 'boolean'
              ? ('boolean' as const)
              : ('string' as const),
      },
    ]),
  );
  return { kind: 'csv', ...(name === undefined ? {} : { name }), path, dataType: type, fields };
}

/** Writes `syntheticCsv` output to a file. */
export async function writeSyntheticCsv(
  path: string,
  type: DataType,
  subjects: readonly string[],
  options: SyntheticRecordOptions = {},
): Promise<void> {
  await writeFile(path, syntheticCsv(type, subjects, options), 'utf8');
}

/** A fault to inject for one data type (or `*` for all). */
export interface SyntheticFault {
  /** Answer 503. */
  down?: boolean;
  /** Wait this long before answering. */
  slowMs?: number;
  /** Answer 200 with text that is not JSON, or JSON of the wrong shape. */
  garbage?: 'not-json' | 'wrong-shape';
  /** Answer 503 to the first N requests of the type, then normally. */
  flaky?: number;
}

/** Faults by data type; `*` applies to types without their own entry. */
export type SyntheticFaults = Partial<Record<DataType | '*', SyntheticFault>>;

/** Options of the synthetic platform server. */
export interface SyntheticDataPlatformOptions extends Pick<SyntheticRecordOptions, 'seed' | 'asOf'> {
  port?: number;
  host?: string;
  faults?: SyntheticFaults;
  /** Ed25519 secret key (32-byte seed) the answers are signed with (default: a fresh one). */
  sourceKey?: Uint8Array;
  /** The platform's source id in genesis (default `DEFAULT_SYNTHETIC_SOURCE_ID`). */
  sourceId?: string;
  /** Unix ms stamped into signed statements (default `Date.now`). */
  now?: () => number;
}

/** A running synthetic platform. */
export interface SyntheticDataPlatform {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  url: string;
  /** The id and public key its answers are signed with. */
  source: SyntheticSigner;
  /** Replaces the injected faults. */
  setFaults(faults: SyntheticFaults): void;
  /** Data requests received so far, by type (faulty answers included). */
  requestCount(type?: DataType): number;
  /** The exact bytes of the data answers served (status 200, the latest 10,000), for leak scans in tests. */
  servedAnswers(): Uint8Array[];
  /** Stops listening; pending slow answers are cut short. */
  close(): Promise<void>;
}

interface PlatformState {
  faults: SyntheticFaults;
  counts: Map<DataType, number>;
  served: Uint8Array[];
  closing: AbortController;
}

const MAX_SERVED = 10_000;

function sleep(ms: number, signals: AbortSignal[]): Promise<void> {
  return new Promise((resolve) => {
    const signal = AbortSignal.any(signals);
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

function isDataType(value: string): value is DataType {
  return (DATA_TYPES as readonly string[]).includes(value);
}

/** Builds the Fastify app (not listening), for `inject()` tests; `state` holds faults and counters. */
export function buildSyntheticDataPlatform(
  options: Pick<
    SyntheticDataPlatformOptions,
    'seed' | 'asOf' | 'faults' | 'sourceKey' | 'sourceId' | 'now'
  > = {},
): { app: FastifyInstance; platform: Omit<SyntheticDataPlatform, 'url' | 'close'>; abort: () => void } {
  const seed = options.seed ?? DEFAULT_SYNTHETIC_SEED;
  const signing: SigningKeyPair = generateSigningKeyPair(options.sourceKey);
  const signer: SyntheticSigner = {
    id: options.sourceId ?? DEFAULT_SYNTHETIC_SOURCE_ID,
    key: bytesToHex(signing.publicKey),
  };
  const now = options.now ?? Date.now;
  const asOf = options.asOf ?? DEFAULT_SYNTHETIC_AS_OF;
  const state: PlatformState = {
    faults: options.faults ?? {},
    counts: new Map(),
    served: [],
    closing: new AbortController(),
  };
  // Personal (if synthetic) data flows through here: the server logs nothing.
  const app = Fastify({ logger: false, forceCloseConnections: true });
  app.addHook('onSend', async (request, reply, payload) => {
    if (request.url.startsWith('/v1/') && reply.statusCode === 200 && typeof payload === 'string') {
      state.served.push(new TextEncoder().encode(payload));
      if (state.served.length > MAX_SERVED) state.served.shift();
    }
    return payload;
  });

  app.get('/', async () => ({
    synthetic: true,
    notice: SYNTHETIC_NOTICE,
    routes: ['GET /v1/{type}/{subject}?from=YYYY-MM-DD&to=YYYY-MM-DD', 'GET /health'],
    types: DATA_TYPES,
    source: signer,
  }));

  app.get('/health', async (_request, reply) => {
    const all = state.faults['*'];
    if (all?.down) return reply.code(503).send({ ok: false, synthetic: true });
    return { ok: true, synthetic: true, notice: SYNTHETIC_NOTICE };
  });

  app.get<{ Params: { type: string; subject: string }; Querystring: { from?: string; to?: string } }>(
    '/v1/:type/:subject',
    async (request, reply) => {
      const { type, subject } = request.params;
      if (!isDataType(type)) return reply.code(404).send({ synthetic: true, error: 'UNKNOWN_TYPE' });
      state.counts.set(type, (state.counts.get(type) ?? 0) + 1);
      const fault = state.faults[type] ?? state.faults['*'] ?? {};
      if (fault.slowMs !== undefined && fault.slowMs > 0) {
        const gone = new AbortController();
        reply.raw.once('close', () => gone.abort());
        await sleep(fault.slowMs, [gone.signal, state.closing.signal]);
        if (gone.signal.aborted || state.closing.signal.aborted)
          return reply.code(503).send({ synthetic: true, error: 'CLOSING' });
      }
      if (fault.down) return reply.code(503).send({ synthetic: true, error: 'UNAVAILABLE' });
      if (fault.flaky !== undefined && (state.counts.get(type) ?? 0) <= fault.flaky) {
        return reply.code(503).send({ synthetic: true, error: 'UNAVAILABLE' });
      }
      if (fault.garbage === 'not-json') {
        return reply
          .code(200)
          .type('application/json')
          .send('<html><body>synthetic maintenance page</body></html>');
      }
      if (fault.garbage === 'wrong-shape') return { synthetic: true, result: [1, 2, 3] };

      if (!SUBJECT_RE.test(subject)) return reply.code(400).send({ synthetic: true, error: 'BAD_SUBJECT' });
      const from = request.query.from || undefined;
      const to = request.query.to || undefined;
      let record: SyntheticRecord | undefined;
      try {
        record = syntheticRecord(subject, type, { seed, asOf, from, to });
      } catch (err) {
        return reply
          .code(400)
          .send({ synthetic: true, error: 'BAD_PERIOD', message: (err as Error).message });
      }
      if (record === undefined) return reply.code(404).send({ synthetic: true, error: 'NOT_FOUND' });
      const body = JSON.stringify({
        synthetic: true,
        notice: SYNTHETIC_NOTICE,
        subject,
        type,
        asOf,
        period: { from, to },
        data: record,
      });
      const signed = signSourceStatement(
        {
          v: 1,
          source: signer.id,
          subject,
          type,
          ...(from === undefined ? {} : { from }),
          ...(to === undefined ? {} : { to }),
          digest: sha256Hex(utf8ToBytes(body)),
          time: now(),
        },
        signing.secretKey,
      );
      return reply
        .code(200)
        .type('application/json; charset=utf-8')
        .header(DEFAULT_SIGNATURE_HEADER, signatureHeaderValue(signed))
        .send(body);
    },
  );

  const platform = {
    source: signer,
    setFaults(faults: SyntheticFaults) {
      state.faults = faults;
    },
    servedAnswers() {
      return state.served.map((b) => b.slice());
    },
    requestCount(type?: DataType) {
      if (type !== undefined) return state.counts.get(type) ?? 0;
      let total = 0;
      for (const n of state.counts.values()) total += n;
      return total;
    },
  };
  return { app, platform, abort: () => state.closing.abort() };
}

/** Starts the synthetic platform (default 127.0.0.1, port 0 = any free port). */
export async function startSyntheticDataPlatform(
  options: SyntheticDataPlatformOptions = {},
): Promise<SyntheticDataPlatform> {
  const { app, platform, abort } = buildSyntheticDataPlatform(options);
  const host = options.host ?? '127.0.0.1';
  await app.listen({ port: options.port ?? 0, host });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return {
    ...platform,
    url: `http://${urlHost}:${port}`,
    async close() {
      abort();
      await app.close();
    },
  };
}

function parseTypeOption(value: string): DataType {
  if (!isDataType(value)) throw new Error(`--type must be one of ${DATA_TYPES.join(', ')}`);
  return value;
}

async function main(argv: string[]): Promise<void> {
  const program = new Command()
    .name('synthetic-data-platform')
    .description(
      'SYNTHETIC public data platform for datagrant demos and tests (generated data, no real people)',
    );
  program
    .command('serve', { isDefault: true })
    .description('serve generated records over HTTP; prints {"url":...} as one JSON line')
    .option('--port <port>', 'port (0 = any free port)', '7070')
    .option('--host <host>', 'interface to listen on', '127.0.0.1')
    .option('--seed <seed>', 'generator seed', DEFAULT_SYNTHETIC_SEED)
    .option('--as-of <date>', 'the generator\u2019s "today" (YYYY-MM-DD)', DEFAULT_SYNTHETIC_AS_OF)
    .option('--key-file <file>', 'sign answers with the signing key of this key file (default: a fresh key)')
    .option('--source-id <id>', 'the platform\u2019s source id in genesis', DEFAULT_SYNTHETIC_SOURCE_ID)
    .action(
      async (opts: {
        port: string;
        host: string;
        seed: string;
        asOf: string;
        keyFile?: string;
        sourceId: string;
      }) => {
        const sourceKey =
          opts.keyFile === undefined
            ? undefined
            : decodeKeyFile(JSON.parse(await readFile(opts.keyFile, 'utf8'))).signing.secretKey;
        const platform = await startSyntheticDataPlatform({
          port: Number(opts.port),
          host: opts.host,
          seed: opts.seed,
          asOf: opts.asOf,
          sourceId: opts.sourceId,
          ...(sourceKey ? { sourceKey } : {}),
        });
        process.stdout.write(
          `${JSON.stringify({ url: platform.url, synthetic: true, notice: SYNTHETIC_NOTICE, source: platform.source })}\n`,
        );
        const stop = () => {
          platform.close().then(
            () => process.exit(0),
            () => process.exit(1),
          );
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      },
    );
  program
    .command('emit-csv')
    .description('write generated records of one type as CSV for the csv plugin')
    .requiredOption('--type <type>', `one of ${DATA_TYPES.join(', ')}`, parseTypeOption)
    .requiredOption('--subjects <ids>', 'comma-separated pseudonymous subject ids')
    .requiredOption('--out <file>', 'output CSV file')
    .option('--seed <seed>', 'generator seed', DEFAULT_SYNTHETIC_SEED)
    .option('--as-of <date>', 'the generator\u2019s "today" (YYYY-MM-DD)', DEFAULT_SYNTHETIC_AS_OF)
    .action(async (opts: { type: DataType; subjects: string; out: string; seed: string; asOf: string }) => {
      const subjects = opts.subjects.split(',').filter((s) => s.length > 0);
      await writeSyntheticCsv(opts.out, opts.type, subjects, { seed: opts.seed, asOf: opts.asOf });
      process.stdout.write(
        `${JSON.stringify({ file: opts.out, type: opts.type, rows: subjects.length, synthetic: true })}\n`,
      );
    });
  await program.parseAsync(argv);
}

function isMain(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(entry)).href;
  } catch {
    return false;
  }
}

if (isMain()) {
  main(process.argv).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
