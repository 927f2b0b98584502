// Type definitions for @rotor/node (hand-written next to index.js; the
// node tests check that they declare what the module exports).

/** How a token was obtained (SPEC §3). */
export type Outcome = 'cached' | 'adopted-main' | 'adopted-peer' | 'refreshed';

/** A usable access token. */
export interface Token {
  accessToken: string;
  /** Expiry, epoch ms (null when the provider gave none). */
  expiresAtMs: number | null;
  /** Generation of the credential it belongs to. */
  generation: number;
  outcome: Outcome;
  /** Things that went wrong without failing the call. */
  warnings: string[];
}

/** Every `RotorError.code`: the kinds `rotor token --json` reports. */
export type RotorErrorCode =
  | 'usage' | 'invalid_id'
  | 'no_credential' | 'provider_mismatch' | 'not_refreshable' | 'logged_out'
  | 'needs_reauth' | 'rotation_not_stored'
  | 'in_doubt' | 'transient' | 'rejected'
  | 'lock_timeout' | 'lock_error'
  | 'store_corrupt' | 'store_unsafe' | 'store_lock_timeout' | 'store_io'
  | 'superseded';

export declare const ERROR_CODES: readonly RotorErrorCode[];

/** A failed call. The message names the profile and never a secret. */
export declare class RotorError extends Error {
  readonly name: 'RotorError';
  readonly code: RotorErrorCode;
  /** The exit code `rotor token` exits with for the same failure. */
  readonly exitCode: number;
}

/** Policy overrides in milliseconds (`rotor token`'s flags). */
export interface Policy {
  /** Refresh when the access token expires within this margin (default 300000). */
  refreshMarginMs?: number;
  /** Hard deadline of one token-endpoint call (default 30000). */
  callDeadlineMs?: number;
  /** Longest wait for the refresh lock (default 120000). */
  lockWaitMs?: number;
  /** Longest wait for a store's lock (default 10000). */
  storeLockWaitMs?: number;
}

export interface TokenRequest {
  /** "main" (default) or a sub-agent id: letters, digits, _ - . */
  agent?: string;
  /** The profile id, e.g. "acme:default". */
  profile: string;
  /** The provider id (default: the one stored for the profile). */
  provider?: string;
  /**
   * Stops waiting: the promise rejects with `signal.reason`. The call runs
   * to its end all the same (a refresh in flight keeps the lock until the
   * endpoint answers; its rotation is stored for the next caller).
   */
  signal?: AbortSignal;
}

export interface LogoutRequest {
  agent?: string;
  profile: string;
  provider?: string;
}

export interface LoginRequest {
  agent?: string;
  profile: string;
  provider: string;
  accessToken: string;
  refreshToken: string;
  /** Expiry of the access token, epoch ms (or expiresInS). */
  expiresAtMs?: number;
  /** Lifetime of the access token in seconds from now. */
  expiresInS?: number;
  /** The token endpoint (RFC 6749 §6), with clientId. */
  tokenUrl?: string;
  clientId?: string;
  clientSecret?: string;
  authMethod?: 'client_secret_basic' | 'client_secret_post' | 'none';
  scope?: string;
  /** PEM file of trust roots for an https tokenUrl. */
  caFile?: string;
  /** A command that refreshes the credential itself (instead of tokenUrl). */
  refreshCommand?: string[];
  /** Identity, for the identity gate (G3). */
  accountId?: string;
  email?: string;
  tenant?: string;
}

/** `rotor status --json`: secrets appear only as fingerprints. */
export interface StatusReport {
  state_dir: string;
  now_ms: number;
  stores: Array<{
    agent: string;
    path: string;
    error?: string;
    missing?: boolean;
    has_state?: boolean;
    profiles?: Record<string, Record<string, unknown>>;
  }>;
  refresh_locks: Array<{
    path: string;
    provider: string | null;
    profile: string | null;
    held: boolean;
    holder: Record<string, unknown> | null;
  }>;
}

/**
 * One state directory. Open it once per process and share it: every call
 * of one Rotor goes through one in-process single-flight, so many agents
 * asking at once make one refresh.
 */
export declare class Rotor {
  private constructor();
  readonly stateDir: string;
  /** Opens (creating it 0700 if missing) the state directory. */
  static open(stateDir: string, policy?: Policy): Promise<Rotor>;
  /** A usable access token, refreshed safely if needed. */
  token(request: TokenRequest): Promise<Token>;
  /** Installs a new token family; resolves to its generation. */
  login(request: LoginRequest): Promise<number>;
  /** Leaves a logout tombstone (G11); resolves to its generation. */
  logout(request: LogoutRequest): Promise<number>;
  status(): Promise<StatusReport>;
}
