/**
 * The npm package as a user gets it: `npm run build`, `npm pack`, then `npm install <tarball>`
 * into an empty project (dependencies from the npm cache, optional peers NOT installed) and use
 * it from plain Node (no tsx): both entries and `/http`, a local lake written and read back, the
 * `friday` bin, a TypeScript consumer type-checked against the shipped `.d.ts`, and the error a
 * backend gives when its optional driver is missing. Slow (a build and an install): one run.
 */

import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc')
const PKG = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
  name: string
  main: string
  types: string
  exports: unknown
  bin: Record<string, string>
  devDependencies: Record<string, string>
  peerDependencies: Record<string, string>
}

const KEEP_NPM_CONFIG = /^npm_config_(cache|registry|userconfig|globalconfig|proxy|https_proxy|noproxy|strict_ssl|cafile|ca)$/i

interface Run {
  code: number
  stdout: string
  stderr: string
}

/** Runs `file args` in `cwd` (no shell); resolves with the exit code, never rejects on a non-zero one. */
function run(file: string, args: string[], cwd: string, timeoutMs = 240_000): Promise<Run> {
  // `npm test` exports npm_* variables (e.g. the project's own prefix): the consumer must not inherit
  // them, except where npm's cache, registry and network settings come from
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) || KEEP_NPM_CONFIG.test(k)) env[k] = v
  return new Promise((resolve) => {
    execFile(file, args, { cwd, env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0
      resolve({ code, stdout: String(stdout), stderr: `${stderr}${err && typeof err.code !== 'number' ? err.message : ''}` })
    })
  })
}

/** `run` that must succeed; the error shows what the command printed. */
async function ok(file: string, args: string[], cwd: string): Promise<string> {
  const r = await run(file, args, cwd)
  if (r.code !== 0) throw new Error(`${file} ${args.join(' ')} exited ${r.code}:\n${r.stdout}\n${r.stderr}`)
  return r.stdout
}

let work: string
let consumer: string
let packed: string[]

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'friday-package-'))
  consumer = join(work, 'consumer')
  await mkdir(consumer)
  // the build `prepare` runs on `npm ci` and `npm pack`, run once here; then pack what it made
  await ok('npm', ['run', 'build', '--silent'], ROOT)
  const pack = JSON.parse(await ok('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], ROOT)) as {
    filename: string
    files: { path: string }[]
  }[]
  packed = pack[0].files.map((f) => f.path)
  await writeFile(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }))
  // @types/node for the TypeScript consumer: the version this project is typed against
  const types = `@types/node@${PKG.devDependencies['@types/node']}`
  const install = ['install', join(work, pack[0].filename), types, '--prefer-offline', '--no-audit', '--no-fund']
  await ok('npm', [...install, '--loglevel=error'], consumer)
}, 300_000)

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true })
})

/** Runs an ES module in the consumer with plain Node (no loader) and parses the JSON it prints. */
async function node(name: string, code: string): Promise<any> {
  await writeFile(join(consumer, name), code)
  return JSON.parse(await ok(process.execPath, [name], consumer))
}

describe('npm package', () => {
  test('the tarball holds the build, the bin and the docs: no sources of tests, benchmarks or fixtures', () => {
    for (const f of ['package.json', 'README.md', 'LICENSE', 'bin/friday.js', 'dist/cli/bin.js']) expect(packed).toContain(f)
    for (const entry of ['index', 'node', 'http/index']) {
      expect(packed).toContain(`dist/${entry}.js`)
      expect(packed).toContain(`dist/${entry}.d.ts`)
    }
    // every file package.json points at is in the tarball (TypeScript would silently fall back from a wrong `types`)
    const targets = (v: unknown): string[] =>
      typeof v === 'string' ? [v] : v && typeof v === 'object' ? Object.values(v).flatMap(targets) : []
    const pointed = [PKG.main, PKG.types, ...targets(PKG.exports), ...Object.values(PKG.bin)].map((p) => p.replace(/^\.\//, ''))
    expect(pointed.filter((p) => !packed.includes(p))).toEqual([])
    const stray = packed.filter(
      (p) =>
        !/^(dist|bin|docs)\//.test(p) ||
        /(^|\/)(test|tests|bench|fixtures|examples|functions|node_modules)\//.test(p) ||
        /\.test\.|(?<!\.d)\.ts$/.test(p),
    )
    expect(stray.filter((p) => !['package.json', 'README.md', 'LICENSE'].includes(p))).toEqual([])
  })

  test('installing it pulls no TypeScript loader and none of the optional peers', () => {
    const modules = join(consumer, 'node_modules')
    expect(existsSync(join(modules, PKG.name, 'dist/index.js'))).toBe(true)
    for (const absent of ['tsx', ...Object.keys(PKG.peerDependencies)]) expect(existsSync(join(modules, absent))).toBe(false)
  })

  test('plain Node imports the entries and writes and reads a local lake exactly', async () => {
    const lake = join(work, 'lake')
    const out = await node(
      'roundtrip.mjs',
      `
import * as web from 'friday-market-data'
import * as nodeEntry from 'friday-market-data/node'
import { createApp } from 'friday-market-data/http'
const storage = nodeEntry.createStorage({ storage: { local_parquet: { base_dir: ${JSON.stringify(lake)} } } }, {})
const rows = [
  { symbol: 'AAPL', timestamp: '2024-03-01T15:00:00.123456Z', close: 172.32, volume: 84428 },
  { symbol: 'AAPL', timestamp: '2024-03-01T15:15:00Z', close: 172.02, volume: 48813 },
  { symbol: 'MSFT', timestamp: '2024-03-01T15:00:00Z', close: 415.5, volume: 1 },
]
const written = await storage.write('bars', rows)
const back = web.toRows(await storage.read('bars'))
const app = createApp({ storage })
const health = await app.request('http://127.0.0.1/healthz')
await storage.close()
console.log(JSON.stringify({
  rowsWritten: written.rowsWritten,
  back,
  health: health.status,
  web: [typeof web.createStorage, typeof web.LakeStorage, typeof web.ConfigError, typeof web.parseConfig],
  node: [typeof nodeEntry.createLocalFsStore, typeof nodeEntry.getDefaultStorage, nodeEntry.ConfigError === web.ConfigError],
}))
`,
    )
    expect(out.rowsWritten).toBe(3)
    expect(out.back).toEqual([
      { symbol: 'AAPL', timestamp: '2024-03-01T15:00:00.123456Z', close: 172.32, volume: 84428 },
      { symbol: 'AAPL', timestamp: '2024-03-01T15:15:00.000Z', close: 172.02, volume: 48813 },
      { symbol: 'MSFT', timestamp: '2024-03-01T15:00:00.000Z', close: 415.5, volume: 1 },
    ])
    expect(out.health).toBe(200)
    expect(out.web).toEqual(['function', 'function', 'function', 'function'])
    expect(out.node).toEqual(['function', 'function', true])
  })

  test('a backend whose optional driver is not installed fails with a ConfigError naming the package', async () => {
    const out = await node(
      'missing-peer.mjs',
      `
import { ConfigError, createStorage } from 'friday-market-data/node'
const attempt = (storage) => {
  try {
    createStorage({ storage }, {})
    return 'created'
  } catch (err) {
    return { config: err instanceof ConfigError, status: err.status, message: err.message }
  }
}
console.log(JSON.stringify({
  postgres: attempt({ default_backend: 'postgres', postgres: { url: 'postgres://u@127.0.0.1:1/db' } }),
  neon: attempt({ default_backend: 'postgres', postgres: { url: 'postgres://u@ep-x.neon.tech/db' } }),
  mongodb: attempt({ default_backend: 'mongodb', mongodb: { url: 'mongodb://127.0.0.1:1' } }),
  globalWebSocket: typeof globalThis.WebSocket === 'function',
}))
`,
    )
    const missing = (backend: string, pkg: string) => ({
      config: true,
      status: 500,
      message: `storage.default_backend '${backend}' needs the optional package ${pkg}: npm install ${pkg}@${PKG.devDependencies[pkg]}`,
    })
    expect(out.postgres).toEqual(missing('postgres', 'pg'))
    expect(out.mongodb).toEqual(missing('mongodb', 'mongodb'))
    // Neon's driver ships with the package; on Node 20 (no global WebSocket) it needs `ws`
    expect(out.neon).toEqual(
      out.globalWebSocket
        ? 'created'
        : {
            ...missing('postgres', 'ws'),
            message: `storage.default_backend 'postgres' (the neon driver, on a runtime without WebSocket) needs the optional package ws: npm install ws@${PKG.devDependencies.ws}`,
          },
    )
  })

  test('the friday bin runs the build with plain Node: --help, ingest and query on a local lake', async () => {
    const cli = join(work, 'cli')
    await mkdir(cli)
    const csv = join(cli, 'bars.csv')
    await writeFile(csv, 'symbol,timestamp,close\nAAPL,2024-03-01T15:00:00Z,172.32\nAAPL,2024-03-01T15:15:00Z,172.02\n')
    const bin = ['exec', '--no', '--', 'friday']
    const help = await run('npm', [...bin, '--help'], consumer)
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('Usage: friday')
    const dataDir = ['--data-dir', join(cli, 'data')]
    const ingest = await run('npm', [...bin, ...dataDir, 'ingest', csv, '--dataset', 'bars', '--quiet'], consumer)
    expect(ingest).toMatchObject({ code: 0 })
    const query = await run('npm', [...bin, ...dataDir, 'query', '--dataset', 'bars', '--format', 'csv'], consumer)
    expect(query.code).toBe(0)
    expect(query.stdout.trim().split(/\r?\n/)).toEqual([
      'symbol,timestamp,close',
      'AAPL,2024-03-01T15:00:00.000Z,172.32',
      'AAPL,2024-03-01T15:15:00.000Z,172.02',
    ])
  })

  test('a TypeScript consumer type-checks against the shipped declarations (NodeNext)', async () => {
    await writeFile(
      join(consumer, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          types: ['node'],
        },
        files: ['consumer.ts'],
      }),
    )
    await writeFile(
      join(consumer, 'consumer.ts'),
      `
import { ConfigError, type DataStorage, type Table, toRows, type WriteResult } from 'friday-market-data'
import { type AppOptions, createApp } from 'friday-market-data/http'
import { createLocalFsStore, createStorage } from 'friday-market-data/node'

export async function roundTrip(dir: string): Promise<number> {
  const storage: DataStorage = createStorage({ storage: { local_parquet: { base_dir: dir } } })
  const written: WriteResult = await storage.write('bars', [{ symbol: 'AAPL', timestamp: '2024-03-01T15:00:00Z', close: 1 }])
  const table: Table = await storage.read('bars', { symbols: ['AAPL'] })
  const options: AppOptions = { storage }
  createApp(options)
  createLocalFsStore({ baseDir: dir })
  // the declarations are real types, not \`any\`: these misuses must not compile
  // @ts-expect-error write takes a dataset name first
  await storage.write(42)
  // @ts-expect-error a Table has no such property
  table.rows
  return written.rowsWritten + toRows(table).length + (new ConfigError('x') instanceof Error ? 0 : 1)
}
`,
    )
    const r = await run(process.execPath, [TSC, '-p', 'tsconfig.json'], consumer)
    expect(`${r.stdout}${r.stderr}`).toBe('')
    expect(r.code).toBe(0)
  })
})
