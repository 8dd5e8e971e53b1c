import { ioredis } from "./commonjs.js";
import { hashTagOf, type RedisConnection } from "./redis.js";

/**
 * Who asks for a lease: an owner (a session, say) in one of its generations (a fencing epoch). A later
 * generation of the same owner supersedes an earlier one; anyone else must wait for the lease to be released
 * or to expire, or take it over explicitly.
 */
export interface LeaseClaim {
  owner: string;
  generation: number;
}

/** The current holder of a lease, as Redis has it. */
export interface LeaseHolder extends LeaseClaim {
  /** The fencing token the holder was granted: grows with every grant, never reused for the resource. */
  token: number;
  /** Until the lease lapses unless renewed. */
  expiresInMs: number;
}

export type LeaseGrant =
  | { granted: true; token: number; previous: LeaseHolder | null }
  | { granted: false; holder: LeaseHolder };

/** Whether a holder's token is still the current one; when not, who (if anyone) holds the lease now. */
export type LeaseStanding = { held: true } | { held: false; holder: LeaseHolder | null };

/*
 * KEYS[1] the lease (a hash: owner, generation, token; expires with the lease), KEYS[2] the fencing counter
 * (never expires, so a token is never granted twice even after the lease lapsed or was released), KEYS[3]
 * each owner's newest generation granted and its token (a hash: owner and owner:token; never expires, so an
 * earlier generation is not granted a lease a later one held and let lapse, say while its process stalled).
 * Every operation is one script, so grant, renewal, check and release never interleave.
 */
const HOLDER = `
local function holder()
  local fields = redis.call('HMGET', KEYS[1], 'owner', 'generation', 'token')
  if not fields[1] then return nil end
  return {fields[1], tonumber(fields[2]), tonumber(fields[3]), redis.call('PTTL', KEYS[1])}
end
local function grant(owner, generation, token, ttl)
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'owner', owner, 'generation', generation, 'token', token)
  redis.call('PEXPIRE', KEYS[1], ttl)
end
`;

/**
 * ARGV: owner, generation, ttl ms, take over (1/0). Returns {1, token, previous...} or {0, holder...}; an
 * owner's earlier generation is refused even when the later one's lease has lapsed (the holder named is the
 * later one, with 0 ms left).
 */
const ACQUIRE_SCRIPT = `${HOLDER}
local current = holder()
local generation = tonumber(ARGV[2])
if current and current[1] == ARGV[1] and current[2] == generation then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {1, current[3]}
end
local newest = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '-1')
if newest > generation then
  if current and current[1] == ARGV[1] then return {0, current[1], current[2], current[3], current[4]} end
  return {0, ARGV[1], newest, tonumber(redis.call('HGET', KEYS[3], ARGV[1] .. ':token')), 0}
end
if current then
  local supersedes = current[1] == ARGV[1] and current[2] < generation
  if not supersedes and ARGV[4] ~= '1' then return {0, current[1], current[2], current[3], current[4]} end
end
local token = redis.call('INCR', KEYS[2])
grant(ARGV[1], generation, token, ARGV[3])
redis.call('HSET', KEYS[3], ARGV[1], generation, ARGV[1] .. ':token', token)
if current then return {1, token, current[1], current[2], current[3], current[4]} end
return {1, token}`;

/**
 * ARGV: token, ttl ms, owner, generation. Extends the lease when the token is current. A lease that lapsed
 * (an outage longer than its time to live) is taken up again only if no token was granted since this one,
 * so nobody else can have held it in between. Returns {1} or {0, holder...}.
 */
const RENEW_SCRIPT = `${HOLDER}
local token = tonumber(ARGV[1])
local current = holder()
if current then
  if current[3] == token then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return {1}
  end
  return {0, current[1], current[2], current[3], current[4]}
end
local granted = tonumber(redis.call('GET', KEYS[2]) or '0')
if granted > token then return {0} end
redis.call('SET', KEYS[2], token)
grant(ARGV[3], tonumber(ARGV[4]), token, ARGV[2])
return {1}`;

/** ARGV: token. Deletes the lease only if the token is current. Returns 1 when released. */
const RELEASE_SCRIPT = `
if tonumber(redis.call('HGET', KEYS[1], 'token') or '-1') == tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0`;

type Reply = Array<string | number>;

function holderFrom(reply: Reply, at: number): LeaseHolder | null {
  if (reply.length <= at) return null;
  return { owner: String(reply[at]), generation: Number(reply[at + 1]), token: Number(reply[at + 2]), expiresInMs: Math.max(0, Number(reply[at + 3])) };
}

/**
 * A fenced lease on one resource in Redis: at most one holder at a time, with a fencing token that tells a
 * holder whether it still holds the lease (a holder whose token is no longer current must stop acting on the
 * resource). The holder renews it well within `ttlMs`; a holder that dies loses it after `ttlMs`.
 * Redis errors (unreachable, timeouts) are thrown as they are: a caller that cannot reach Redis knows nothing.
 */
export class RedisLease {
  private readonly fenceKey: string;
  private readonly generationsKey: string;

  constructor(
    private readonly redis: RedisConnection,
    /**
     * The lease's key, with `:fence` its fencing counter's and with `:generations` its owners' newest generations.
     * Scripts touch them together, so on a Redis Cluster they must share a slot: the key must carry a hash tag
     * (the queue prefix's, `{savepoint}:…`).
     */
    readonly key: string,
    readonly ttlMs: number,
  ) {
    if (!Number.isSafeInteger(ttlMs) || ttlMs < 1) throw new RangeError(`lease ttlMs must be a whole number of milliseconds ≥ 1 (got ${ttlMs})`);
    if (redis instanceof ioredis.Cluster && hashTagOf(key) === undefined) {
      throw new RangeError(`lease key ${JSON.stringify(key)} has no hash tag, so on a Redis Cluster it and its fence would be in different slots; put one in it, e.g. {savepoint}:…`);
    }
    this.fenceKey = `${key}:fence`;
    this.generationsKey = `${key}:generations`;
  }

  /**
   * Grants the lease when it is free, already this claim's, or held by an earlier generation of the same
   * owner; `takeOver` grants it whoever holds it. Otherwise refuses, naming the holder. An earlier generation
   * of an owner than one granted before is always refused, the lease held or not.
   */
  async acquire(claim: LeaseClaim, options: { takeOver?: boolean } = {}): Promise<LeaseGrant> {
    const reply = (await this.redis.eval(
      ACQUIRE_SCRIPT,
      3,
      this.key,
      this.fenceKey,
      this.generationsKey,
      claim.owner,
      claim.generation,
      this.ttlMs,
      options.takeOver ? 1 : 0,
    )) as Reply;
    if (Number(reply[0]) === 1) return { granted: true, token: Number(reply[1]), previous: holderFrom(reply, 2) };
    return { granted: false, holder: holderFrom(reply, 1)! };
  }

  /** Extends the lease if `token` is still current (taking a lapsed lease up again if nobody had it since). */
  async renew(claim: LeaseClaim, token: number): Promise<LeaseStanding> {
    const reply = (await this.redis.eval(RENEW_SCRIPT, 2, this.key, this.fenceKey, token, this.ttlMs, claim.owner, claim.generation)) as Reply;
    return Number(reply[0]) === 1 ? { held: true } : { held: false, holder: holderFrom(reply, 1) };
  }

  /** Gives the lease up if `token` is still current; false when someone else holds it by now. */
  async release(token: number): Promise<boolean> {
    return Number(await this.redis.eval(RELEASE_SCRIPT, 1, this.key, token)) === 1;
  }
}
