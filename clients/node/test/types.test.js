// The generated wire types match the schemas, and the hand-written API
// types type-check an application's use of them (test/types-check.ts).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const schemas = resolve(pkg, '../../schemas');
const gen = join(pkg, 'scripts/gen-types.mjs');

function check(env = {}) {
  return spawnSync(process.execPath, [gen, '--check'], { cwd: pkg, env: { ...process.env, ...env }, encoding: 'utf8' });
}

test('types/ is what the schemas generate', () => {
  const r = check();
  assert.equal(r.status, 0, r.stderr);
});

test('the check fails when a schema changed and types/ was not regenerated', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'chatmem-schemas-'));
  try {
    cpSync(schemas, tmp, { recursive: true });
    const f = join(tmp, 'context-request.schema.json');
    const s = JSON.parse(readFileSync(f, 'utf8'));
    s.properties.new_field = { type: 'string', description: 'A field the types do not have yet.' };
    writeFileSync(f, JSON.stringify(s, null, 2));
    const r = check({ CHATMEM_SCHEMAS_DIR: tmp });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /context-request\.d\.ts/);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('tsc --noEmit type-checks test/types-check.ts against index.d.ts and seed.d.ts', () => {
  const tsc = join(pkg, 'node_modules/typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '--noEmit', '-p', join(pkg, 'test/tsconfig.json')], { cwd: pkg, stdio: 'pipe' });
});
