#!/usr/bin/env node
/**
 * Makes the TEST-ONLY tokens of a policy-test directory (examples/<name>/tokens/):
 *   node scripts/make-test-tokens.mjs examples/kubeflow/tokens
 * reads DIR/tokens.yaml (file name → claims; iat, nbf and exp may be ISO times), makes a new ES256 key,
 * signs each token with it, writes DIR/<file name> and the public key as DIR/jwks.json, and forgets the
 * private key. Run it again to add a token: every token is signed anew with a new key. The cases file
 * pins `now`, so the tokens' lifetimes stay what tokens.yaml says, forever.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { parse } from 'yaml';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node scripts/make-test-tokens.mjs DIR   (DIR/tokens.yaml lists the tokens)');
  process.exit(2);
}
const spec = parse(readFileSync(join(dir, 'tokens.yaml'), 'utf8'));
const tokens = spec?.tokens;
if (typeof tokens !== 'object' || tokens === null) {
  console.error(`${join(dir, 'tokens.yaml')}: needs "tokens:", a map of file name to claims`);
  process.exit(2);
}

const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
const kid = `policy-test-${new Date().toISOString().slice(0, 10)}`;
const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' }] };
writeFileSync(join(dir, 'jwks.json'), `${JSON.stringify(jwks, null, 2)}\n`);

const seconds = (value) => (typeof value === 'string' ? Math.floor(Date.parse(value) / 1000) : value);
for (const [file, claims] of Object.entries(tokens)) {
  const payload = { ...claims };
  for (const name of ['iat', 'nbf', 'exp']) if (payload[name] !== undefined) payload[name] = seconds(payload[name]);
  const token = await new SignJWT(payload).setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT' }).sign(privateKey);
  writeFileSync(join(dir, file), `${token}\n`);
}
console.log(`wrote ${join(dir, 'jwks.json')} and ${Object.keys(tokens).length} tokens (key ${kid}; the private key is gone)`);
