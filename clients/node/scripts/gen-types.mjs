#!/usr/bin/env node
// Generates the wire types (types/*.d.ts) from the contract's JSON
// schemas (../../schemas/*.schema.json) with json-schema-to-typescript.
//
//   node scripts/gen-types.mjs [DIR]   write them into DIR (default types)
//   node scripts/gen-types.mjs --check generate into a temporary directory
//                                      and fail unless types/ is the same
//                                      (the schemas changed and the types
//                                      were not regenerated)
//
// Each schema's top-level type is named after its file (chat-event ->
// ChatEvent); its title and $id are not used for names.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compile } from 'json-schema-to-typescript';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = resolve(here, '..');
const schemas = process.env.CHATMEM_SCHEMAS_DIR ?? resolve(pkg, '../../schemas');

const BANNER = (file) =>
  `/* Generated from schemas/${file} by scripts/gen-types.mjs\n * (json-schema-to-typescript). Do not edit: run \`npm run gen-types\`. */`;

function typeName(base) {
  return base
    .split('-')
    .map((w) => w[0].toUpperCase() + w.slice(1))
    .join('');
}

async function generate(outDir) {
  mkdirSync(outDir, { recursive: true });
  const files = readdirSync(schemas).filter((f) => f.endsWith('.schema.json')).sort();
  const written = [];
  for (const file of files) {
    const schema = JSON.parse(readFileSync(join(schemas, file), 'utf8'));
    const base = file.replace(/\.schema\.json$/, '');
    delete schema.title;
    delete schema.$id;
    const ts = await compile(schema, typeName(base), {
      bannerComment: BANNER(file),
      additionalProperties: false,
      cwd: schemas,
      format: true,
      strictIndexSignatures: false,
    });
    writeFileSync(join(outDir, `${base}.d.ts`), ts);
    written.push(`${base}.d.ts`);
  }
  return written;
}

if (process.argv[2] === '--check') {
  const tmp = mkdtempSync(join(tmpdir(), 'chatmem-types-'));
  try {
    const fresh = await generate(tmp);
    const committedDir = join(pkg, 'types');
    const committed = readdirSync(committedDir).filter((f) => f.endsWith('.d.ts')).sort();
    const stale = [];
    for (const f of fresh) {
      let old = null;
      try {
        old = readFileSync(join(committedDir, f), 'utf8');
      } catch {}
      if (old !== readFileSync(join(tmp, f), 'utf8')) stale.push(f);
    }
    for (const f of committed) if (!fresh.includes(f)) stale.push(`${f} (no schema)`);
    if (stale.length) {
      console.error(`types/ is out of date with schemas/: ${stale.join(', ')}; run \`npm run gen-types\` in clients/node`);
      process.exit(1);
    }
    console.log(`types/ matches schemas/ (${fresh.length} files)`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
} else {
  const out = resolve(process.argv[2] ?? join(pkg, 'types'));
  const written = await generate(out);
  console.log(`wrote ${written.length} files to ${out}`);
}
