#!/usr/bin/env node
/**
 * A container health check (the image has no curl): exits 0 when the URL answers 200, 1 otherwise, printing
 * the answer, which `docker inspect` shows. Usage: node scripts/healthcheck.mjs http://127.0.0.1:8081/readyz
 */
const url = process.argv[2];
if (!url) {
  console.error("usage: node scripts/healthcheck.mjs URL");
  process.exit(2);
}
try {
  const response = await fetch(url, { signal: AbortSignal.timeout(2_500) });
  const body = await response.text();
  console.log(`${response.status} ${body.slice(0, 500)}`);
  process.exit(response.status === 200 ? 0 : 1);
} catch (error) {
  console.log(`${url}: ${error.cause?.code ?? error.cause?.message ?? error.message}`);
  process.exit(1);
}
