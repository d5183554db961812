/**
 * Committed state with an index of the data requests that may still want records, so that the
 * extractor role can rescan them without walking the whole state: a request enters when it is
 * written (opened, granted, given a record or failure…, and when the state is loaded at start-up)
 * and leaves when it is erased or denied, or when its reader finds it settled for good (every type
 * answered, consent or grant expired, grant revoked) and says so with `settleRequest`. A rescan
 * therefore costs what is open, not what the chain ever held.
 */
import {
  CommittedState,
  type RequestState,
  type StateValue,
  type StateWrites,
  stateKey,
} from '../ledger/index.js';

const REQUEST_PREFIX = stateKey.request('');

/** Committed state that also tracks the ids of requests still open for records. */
export class IndexedCommittedState extends CommittedState {
  readonly #requests = new Set<string>();

  protected override indexedPrefixes(): string[] {
    return [...super.indexedPrefixes(), REQUEST_PREFIX];
  }

  protected override noteLoaded(key: string, value: StateValue): void {
    super.noteLoaded(key, value);
    this.#note(key, value);
  }

  override apply(writes: StateWrites, root: string, height: number, unwritten = false): void {
    super.apply(writes, root, height, unwritten);
    for (const [key, value] of writes) this.#note(key, value);
  }

  /** Ids of the requests that may still want records, in the order they first entered. */
  openRequestIds(): string[] {
    return [...this.#requests];
  }

  /** How many requests the index holds. */
  get openRequestCount(): number {
    return this.#requests.size;
  }

  /**
   * Drops a request its reader found settled for good; it comes back only if it is written again
   * (and is then dropped again by the next reader that looks).
   */
  settleRequest(id: string): void {
    this.#requests.delete(id);
  }

  #note(key: string, value: StateValue | null): void {
    if (!key.startsWith(REQUEST_PREFIX)) return;
    const id = key.slice(REQUEST_PREFIX.length);
    const request = value as RequestState | null;
    if (request === null || request.erased || request.decision === 'denied') this.#requests.delete(id);
    else this.#requests.add(id);
  }
}
