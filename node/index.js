'use strict';
// @rotor/node: rotor's filesystem host for Node.js. The native addon
// (rotor.<platform>-<arch>.node, built from node/src/lib.rs by build.sh)
// runs rotor-fs; this file gives it the Node shape: `await Rotor.open(dir)`,
// promises, and RotorError objects with a stable `code`.
const path = require('node:path');

function loadNative() {
  const file = process.env.ROTOR_NODE_ADDON
    || path.join(__dirname, `rotor.${process.platform}-${process.arch}.node`);
  try {
    return require(file);
  } catch (error) {
    error.message = `@rotor/node: cannot load the native addon ${file}: ${error.message}`
      + ' (build it with `bash node/build.sh`)';
    throw error;
  }
}

const { NativeRotor } = loadNative();

/** Every `code` a RotorError can carry (the kinds `rotor token --json` reports). */
const ERROR_CODES = Object.freeze([
  'usage', 'invalid_id',
  'no_credential', 'provider_mismatch', 'not_refreshable', 'logged_out',
  'needs_reauth', 'rotation_not_stored',
  'in_doubt', 'transient', 'rejected',
  'lock_timeout', 'lock_error',
  'store_corrupt', 'store_unsafe', 'store_lock_timeout', 'store_io',
  'superseded',
]);

/** A failed rotor call: `code` names the kind, `exitCode` is `rotor token`'s. */
class RotorError extends Error {
  constructor(code, message, exitCode) {
    super(message);
    this.name = 'RotorError';
    this.code = code;
    this.exitCode = exitCode;
  }
}

function usage(message) {
  return new RotorError('usage', message, 2);
}

function unwrap(reply) {
  if (reply.error) {
    throw new RotorError(reply.error.code, reply.error.message, reply.error.exitCode);
  }
  return reply.value;
}

function checkRequest(method, request, fields) {
  if (request === null || typeof request !== 'object') {
    throw usage(`rotor.${method} takes an object, e.g. { profile: 'acme:default' }`);
  }
  for (const field of fields) {
    if (typeof request[field] !== 'string') {
      throw usage(`rotor.${method}: ${field} must be a string`);
    }
  }
  for (const field of ['agent', 'provider']) {
    if (request[field] !== undefined && typeof request[field] !== 'string') {
      throw usage(`rotor.${method}: ${field} must be a string when given`);
    }
  }
}

const POLICY_KEYS = Object.freeze(['refreshMarginMs', 'callDeadlineMs', 'lockWaitMs', 'storeLockWaitMs']);

// A misspelt policy key would otherwise be ignored silently.
function checkPolicy(policy) {
  if (policy === undefined || policy === null) return;
  if (typeof policy !== 'object') throw usage('Rotor.open: policy must be an object');
  for (const [key, value] of Object.entries(policy)) {
    if (!POLICY_KEYS.includes(key)) {
      throw usage(`Rotor.open: unknown policy key ${JSON.stringify(key)} (known: ${POLICY_KEYS.join(', ')})`);
    }
    if (value !== undefined && !(Number.isSafeInteger(value) && value >= 0)) {
      throw usage(`Rotor.open: policy.${key} must be a whole number of ms >= 0`);
    }
  }
}

const NATIVE = Symbol('native');

/**
 * One state directory shared by every agent of this process (and, through
 * its files and locks, by every process on the machine). Share one Rotor
 * per directory: its calls coalesce through one in-process single-flight.
 */
class Rotor {
  constructor(native, stateDir) {
    if (!(native instanceof NativeRotor)) {
      throw new TypeError('use `await Rotor.open(stateDir, policy)`');
    }
    this[NATIVE] = native;
    this.stateDir = stateDir;
    Object.freeze(this);
  }

  /** Opens (creating it 0700 if missing) the state directory. */
  static async open(stateDir, policy) {
    if (typeof stateDir !== 'string' || stateDir === '') {
      throw usage('Rotor.open: stateDir must be a non-empty string');
    }
    checkPolicy(policy);
    let native;
    try {
      native = new NativeRotor(stateDir, policy ?? undefined);
    } catch (error) {
      throw usage(`Rotor.open: ${error.message}`);
    }
    unwrap(await native.open());
    return new Rotor(native, stateDir);
  }

  /**
   * A usable access token for `profile`, refreshed safely if needed. With
   * `signal`, the promise rejects with the signal's reason once it aborts;
   * the call itself runs to its end (a refresh in flight keeps the lock
   * until the endpoint answers, and its rotation is stored for the next
   * caller).
   */
  async token(request) {
    checkRequest('token', request, ['profile']);
    const { agent, profile, provider, signal } = request;
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      throw usage('rotor.token: signal must be an AbortSignal when given');
    }
    signal?.throwIfAborted();
    const call = this[NATIVE].token({ agent, profile, provider });
    if (!signal) return unwrap(await call);
    let onAbort;
    const aborted = new Promise((_, reject) => {
      onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return unwrap(await Promise.race([call, aborted]));
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** Installs a new token family for `profile`; resolves to its generation. */
  async login(request) {
    checkRequest('login', request, ['profile', 'provider', 'accessToken', 'refreshToken']);
    return unwrap(await this[NATIVE].login(request));
  }

  /** Logs `profile` out (a tombstone, G11); resolves to its generation. */
  async logout(request) {
    checkRequest('logout', request, ['profile']);
    const { agent, profile, provider } = request;
    return unwrap(await this[NATIVE].logout({ agent, profile, provider }));
  }

  /** What `rotor status --json` prints: stores, profiles, fences, held locks. */
  async status() {
    return unwrap(await this[NATIVE].status());
  }
}

module.exports = { Rotor, RotorError, ERROR_CODES };
