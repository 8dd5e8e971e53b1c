/** Query parameters whose values are secrets (`?password=`, `?sslpassword=`, `?token=`, `?api_key=` …). */
const SECRET_PARAM = /pass|pwd|secret|token|key|auth|credential/i;
const MASK = "***";

/**
 * A connection URL fit for logs and error messages: the userinfo password and the values of secret query
 * parameters become `***`; everything else stays exactly as written.
 *
 * `postgres://app:Le@k3d@db:5432/savepoint?password=x` → `postgres://app:***@db:5432/savepoint?password=***`.
 * The URL is split as WHATWG URL parsing splits it: the authority runs to the first `/`, `?` or `#`, and its
 * userinfo to the authority's last `@`, so a password holding a raw `@` is masked whole. A value that does
 * not parse as a URL (a raw `/`, `?` or `#` in its password, say) counts everything before its last `@` as
 * userinfo, so its password is masked too.
 */
export function redactUrl(value: string): string {
  const parts = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([\s\S]*)$/.exec(value);
  if (!parts) return value;
  const [, scheme = "", rest = ""] = parts;
  const authorityEnd = URL.canParse(value) ? indexOrEnd(rest, rest.search(/[/?#]/)) : rest.length;
  const at = rest.lastIndexOf("@", authorityEnd - 1);
  const userinfo = at === -1 ? "" : `${maskPassword(rest.slice(0, at))}@`;
  const location = rest.slice(at + 1);
  const queryStart = location.indexOf("?");
  if (queryStart === -1) return `${scheme}${userinfo}${location}`;
  const fragmentStart = indexOrEnd(location, location.indexOf("#", queryStart));
  const query = maskQuery(location.slice(queryStart + 1, fragmentStart));
  return `${scheme}${userinfo}${location.slice(0, queryStart + 1)}${query}${location.slice(fragmentStart)}`;
}

function indexOrEnd(text: string, index: number): number {
  return index === -1 ? text.length : index;
}

function maskPassword(userinfo: string): string {
  const colon = userinfo.indexOf(":");
  return colon === -1 ? userinfo : `${userinfo.slice(0, colon)}:${MASK}`;
}

/** `a=1&password=x` → `a=1&password=***`; keys are judged decoded (`pass%77ord` is `password`). */
function maskQuery(query: string): string {
  return query
    .split("&")
    .map((pair) => {
      const separator = pair.indexOf("=");
      if (separator === -1) return pair;
      const rawKey = pair.slice(0, separator);
      const key = new URLSearchParams(`${rawKey}=`).keys().next().value ?? "";
      return SECRET_PARAM.test(key) ? `${rawKey}=${MASK}` : pair;
    })
    .join("&");
}
