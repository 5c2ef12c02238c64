/**
 * The layering of `src/`, checked on the imports of every source file in `src/` and `functions/`
 * (TypeScript's own pre-processor lists them: static, type-only, re-exports and dynamic `import()`):
 * - Node built-ins (`node:*`, or bare `fs`, `path`, `crypto`...) only in the Node-only modules
 *   listed below, and the Web entries (the package's `.` and `./http`, the Worker) reach none of
 *   those modules through their imports: the Worker bundle must never pull them in.
 * - `src/core` imports nothing of the project outside `src/core` (save the pending exceptions
 *   below, each with its reason).
 * - The Postgres and MongoDB backends and the read cache (`src/cache`) take shared rules from
 *   `src/core`, never from `src/lake`.
 * Each rule also runs on a small bad tree, so a rule that could never fail would fail here.
 * (Import cycles are checked by `npm run check:cycles`, dpdm, in CI.)
 */

import { readdirSync, readFileSync } from 'node:fs'
import { builtinModules } from 'node:module'
import { join, posix } from 'node:path'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'

const ROOT = join(import.meta.dirname, '..')

/** Modules that may import Node built-ins: a folder (ending in `/`) or one file, and why. */
const NODE_ONLY: Record<string, string> = {
  'src/backends/node/': 'the local filesystem store and native codecs (node:fs, node:crypto, node:module)',
  'src/backends/mongodb/': 'the official MongoDB driver needs node:net/node:tls; the catalog hashes with node:crypto',
  'src/cli/': 'the `friday` command reads and writes local files and streams',
  'src/server/': 'the Node HTTP server (node:http, node:net)',
  'src/node.ts': 'the Node entry point (installs node:crypto hashing and the local backend)',
}

/**
 * Project modules outside `src/core` that core modules still import, and why. Each is a move into
 * core waiting for its owner; keep this list short.
 */
const CORE_PENDING: Record<string, string> = {}

/** Entry points that must run on Web standards alone (package `.` and `./http`, the Worker). */
const WEB_ENTRIES = ['src/index.ts', 'src/http/index.ts', 'functions/worker.ts']

type Tree = Map<string, string[]>

/** Repository-relative path (posix) → the module specifiers it imports. */
function sourceTree(): Tree {
  const tree: Tree = new Map()
  const walk = (dir: string) => {
    for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
      const path = posix.join(dir, e.name)
      if (e.isDirectory()) walk(path)
      else if (e.name.endsWith('.ts')) tree.set(path, importsOf(readFileSync(join(ROOT, path), 'utf8')))
    }
  }
  walk('src')
  walk('functions')
  return tree
}

function importsOf(source: string): string[] {
  return ts.preProcessFile(source, true, true).importedFiles.map((f) => f.fileName)
}

const isBuiltin = (spec: string) =>
  spec.startsWith('node:') || builtinModules.includes(spec) || builtinModules.includes(spec.split('/')[0])

/** The repository path a relative specifier names (`.js` → `.ts`), or null for a package. */
function resolve(file: string, spec: string): string | null {
  if (!spec.startsWith('.')) return null
  return posix.normalize(posix.join(posix.dirname(file), spec)).replace(/\.js$/, '.ts')
}

const under = (path: string, prefix: string) => (prefix.endsWith('/') ? path.startsWith(prefix) : path === prefix)

function nodeBuiltinViolations(tree: Tree): string[] {
  const out: string[] = []
  for (const [file, specs] of tree) {
    if (Object.keys(NODE_ONLY).some((p) => under(file, p))) continue
    for (const spec of specs) if (isBuiltin(spec)) out.push(`${file} imports ${spec}`)
  }
  return out
}

/** Node-only modules a Web entry reaches through relative imports (static or dynamic), with the importing chain. */
function webEntryViolations(tree: Tree, entries: string[]): string[] {
  const out: string[] = []
  const via = new Map<string, string | null>(entries.map((e) => [e, null]))
  const queue = [...entries]
  while (queue.length) {
    const file = queue.shift()!
    if (Object.keys(NODE_ONLY).some((p) => under(file, p))) {
      const chain = [file]
      for (let f = via.get(file); f; f = via.get(f)) chain.push(f)
      out.push(chain.reverse().join(' -> '))
      continue
    }
    for (const spec of tree.get(file) ?? []) {
      const target = resolve(file, spec)
      if (target && !via.has(target)) {
        via.set(target, file)
        queue.push(target)
      }
    }
  }
  return out
}

function coreViolations(tree: Tree): string[] {
  const out: string[] = []
  for (const [file, specs] of tree) {
    if (!file.startsWith('src/core/')) continue
    for (const spec of specs) {
      const target = resolve(file, spec)
      if (target && !target.startsWith('src/core/') && !(target in CORE_PENDING)) out.push(`${file} imports ${spec}`)
    }
  }
  return out
}

function backendViolations(tree: Tree): string[] {
  const out: string[] = []
  for (const [file, specs] of tree) {
    if (!['src/backends/postgres/', 'src/backends/mongodb/', 'src/cache/'].some((p) => file.startsWith(p))) continue
    for (const spec of specs) if (resolve(file, spec)?.startsWith('src/lake/')) out.push(`${file} imports ${spec}`)
  }
  return out
}

describe('layering', () => {
  const tree = sourceTree()

  it('reads the whole tree, imports of every kind', () => {
    expect(tree.size).toBeGreaterThan(100)
    expect(tree.get('src/core/index.ts')).toContain('./types.js')
    expect(importsOf("import type { A } from './a.js'\nexport * from './b.js'\nawait import('node:fs')\n")).toEqual([
      './a.js',
      './b.js',
      'node:fs',
    ])
  })

  it('lists only Node-only modules that exist', () => {
    const files = [...tree.keys()]
    for (const p of [...Object.keys(NODE_ONLY), ...Object.keys(CORE_PENDING)]) {
      expect(
        files.some((f) => under(f, p)),
        p,
      ).toBe(true)
    }
  })

  it('src/core/index.ts re-exports every core module', () => {
    const modules = [...tree.keys()].filter((f) => f.startsWith('src/core/') && f !== 'src/core/index.ts')
    expect(
      tree
        .get('src/core/index.ts')
        ?.map((s) => resolve('src/core/index.ts', s))
        .sort(),
    ).toEqual(modules.sort())
  })

  it('Node built-ins are imported only by the Node-only modules', () => {
    expect(nodeBuiltinViolations(tree)).toEqual([])
  })

  it('the Web entries reach no Node-only module', () => {
    for (const e of WEB_ENTRIES) expect(tree.has(e), e).toBe(true)
    expect(webEntryViolations(tree, WEB_ENTRIES)).toEqual([])
  })

  it('src/core imports nothing of the project outside src/core', () => {
    expect(coreViolations(tree)).toEqual([])
  })

  it('the Postgres and MongoDB backends and src/cache do not import src/lake', () => {
    expect(backendViolations(tree)).toEqual([])
  })

  it('each rule finds a bad import', () => {
    const bad: Tree = new Map([
      ['src/http/app.ts', ['node:crypto', 'hono']],
      ['src/lake/journal.ts', ['fs/promises']],
      ['src/training/npy.ts', ['buffer']],
      ['src/cli/index.ts', ['node:fs']],
      ['src/core/table.ts', ['./types.js', '../lake/manifest.js', './time.js', 'ulid']],
      ['src/backends/postgres/write.ts', ['../../core/partitioning.js', '../../lake/partitioning.js']],
      ['src/backends/mongodb/catalog.ts', ['../../lake/ids.js', 'node:crypto']],
      ['src/cache/with-read-cache.ts', ['../lake/read-path.js', '../core/filter.js']],
    ])
    expect(nodeBuiltinViolations(bad)).toEqual([
      'src/http/app.ts imports node:crypto',
      'src/lake/journal.ts imports fs/promises',
      'src/training/npy.ts imports buffer',
    ])
    const chain: Tree = new Map([
      ['src/index.ts', ['./config/factory.js']],
      ['src/config/factory.ts', ['../backends/mongodb/index.js', '../core/types.js']],
      ['src/backends/mongodb/index.ts', ['./catalog.js']],
    ])
    expect(webEntryViolations(chain, ['src/index.ts'])).toEqual([
      'src/index.ts -> src/config/factory.ts -> src/backends/mongodb/index.ts',
    ])
    expect(coreViolations(bad)).toEqual(['src/core/table.ts imports ../lake/manifest.js'])
    expect(backendViolations(bad)).toEqual([
      'src/backends/postgres/write.ts imports ../../lake/partitioning.js',
      'src/backends/mongodb/catalog.ts imports ../../lake/ids.js',
      'src/cache/with-read-cache.ts imports ../lake/read-path.js',
    ])
  })
})
