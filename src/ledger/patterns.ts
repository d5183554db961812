/**
 * The shapes of identifiers, in one place: every schema and check of the project uses these.
 *
 * A subject id is pseudonymous: it must never carry a national ID number, so a value shaped like
 * one (15 digits, or 17 digits and a check character 0-9 or x) is refused wherever a subject id is
 * accepted, though it would otherwise fit the id pattern.
 */

/** Lower-case hex of 32 bytes: hashes, digests, Ed25519 and X25519 public keys. */
export const HASH_PATTERN = '^[0-9a-f]{64}$';
/** Lower-case hex of 64 bytes: Ed25519 signatures. */
export const SIG_PATTERN = '^[0-9a-f]{128}$';
/** Chain ids, institution ids, node names. */
export const ID_PATTERN = '^[a-z0-9][a-z0-9-]{2,63}$';
/** Chain ids (same shape as other ids). */
export const CHAIN_PATTERN = ID_PATTERN;
/** Pseudonymous subject ids: an id that is not shaped like a national ID number. */
export const SUBJECT_ID_PATTERN = '^(?![0-9]{15}$)(?![0-9]{17}[0-9x]$)[a-z0-9][a-z0-9-]{2,63}$';

/** `HASH_PATTERN` as a RegExp. */
export const HASH_RE = new RegExp(HASH_PATTERN);
/** `ID_PATTERN` as a RegExp. */
export const ID_RE = new RegExp(ID_PATTERN);
/** `CHAIN_PATTERN` as a RegExp. */
export const CHAIN_RE = new RegExp(CHAIN_PATTERN);
/** `SUBJECT_ID_PATTERN` as a RegExp. */
export const SUBJECT_ID_RE = new RegExp(SUBJECT_ID_PATTERN);
