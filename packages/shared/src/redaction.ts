/** Query parameters whose values are secrets (`?password=`, `?sslpassword=`, `?token=`, `?api_key=` …). */
const SECRET_PARAM = /pass|pwd|secret|token|key|auth|credential/i;
const MASK = "***";

/**
 * A connection URL fit for logs and error messages: the userinfo password and the values of secret query
 * parameters become `***`, everything else stays as written.
 *
 * `postgres://app:Le@k3d@db:5432/savepoint?password=x` → `postgres://app:***@db:5432/savepoint?password=***`.
 * The authority ends at the last `@` before the host, as WHATWG URL parsing has it, so a password holding
 * a raw `@` is masked whole. A value that does not parse as a URL (a raw `/`, `?` or `#` in its password,
 * say) is masked the same way from its text, treating everything before its last `@` as userinfo.
 */
export function redactUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return redactUnparsed(value);
  }
  if (url.password !== "") url.password = MASK;
  if (url.search !== "") url.search = maskQuery(url.search.slice(1));
  return url.href;
}

function maskQuery(query: string): string {
  return query
    .split("&")
    .map((pair) => {
      const separator = pair.indexOf("=");
      const rawKey = separator === -1 ? pair : pair.slice(0, separator);
      const key = new URLSearchParams(`${rawKey}=`).keys().next().value ?? "";
      return separator !== -1 && SECRET_PARAM.test(key) ? `${rawKey}=${MASK}` : pair;
    })
    .join("&");
}

function redactUnparsed(value: string): string {
  const authority = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([\s\S]*)$/.exec(value);
  if (!authority) return value;
  const [, scheme = "", rest = ""] = authority;
  const at = rest.lastIndexOf("@");
  const userinfo = at === -1 ? undefined : rest.slice(0, at);
  const afterUserinfo = at === -1 ? rest : rest.slice(at + 1);
  const queryAt = afterUserinfo.indexOf("?");
  const location = queryAt === -1 ? afterUserinfo : afterUserinfo.slice(0, queryAt);
  const query = queryAt === -1 ? "" : `?${maskQuery(afterUserinfo.slice(queryAt + 1))}`;
  return `${scheme}${userinfo === undefined ? "" : `${maskUserinfo(userinfo)}@`}${location}${query}`;
}

function maskUserinfo(userinfo: string): string {
  const colon = userinfo.indexOf(":");
  return colon === -1 ? userinfo : `${userinfo.slice(0, colon)}:${MASK}`;
}
