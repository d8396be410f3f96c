// README.md's quick start, run as it stands: the first ```js block under
// "## Quick start", written to a module inside the package (so that
// `import ... from 'chatmem'` resolves to this package) and run with node
// against the fleet of tests/test_e2e_client_node.sh.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), '..');

test("the README's five-line quick start runs", { timeout: 30000 }, () => {
  const readme = readFileSync(join(pkg, 'README.md'), 'utf8');
  const section = readme.split(/^## Quick start$/m)[1];
  assert.ok(section, 'README.md has a "## Quick start" section');
  const m = section.match(/^```js\n([\s\S]*?)^```$/m);
  assert.ok(m, 'a ```js block in the quick start');
  const code = m[1];
  assert.equal(code.trimEnd().split('\n').length, 5, 'five lines');
  const file = join(pkg, 'test', `.quickstart-${process.pid}.mjs`);
  writeFileSync(file, code);
  try {
    const r = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 25000 });
    assert.equal(r.status, 0, `exit ${r.status}: ${r.stderr}`);
    assert.match(r.stdout, /request_id/, 'the reply was printed');
    console.log(r.stdout);
  } finally {
    rmSync(file, { force: true });
  }
});
