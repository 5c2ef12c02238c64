/**
 * Runtime smoke tests' process plumbing (test/runtimes, runtime-deno, runtime-node-lts and maintenance-worker): child
 * environments without the config variables of the parent, tool checks, free ports, starting an
 * entry point as a process group and waiting for /healthz, stopping it.
 */

import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createServer } from 'node:net'
import { join, resolve } from 'node:path'
import { beforeAll, describe } from 'vitest'
import type { S3TestConfig } from './s3.js'

export const ROOT = resolve(import.meta.dirname, '..', '..')
export const BIN = join(ROOT, 'node_modules', '.bin')
export const CI = Boolean(process.env.CI)

/** Variables that would steer a child's config away from what each test sets. */
const CONFIG_VARS = /^(STORAGE_BACKEND|DATA_DIR|S3_.*|AWS_.*|API_TOKENS|CORS_ORIGINS|MAX_BODY_BYTES|FRIDAY_ENV|HOST|PORT)$/

export function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!CONFIG_VARS.test(k)) env[k] = v
  return { ...env, AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE: '1', ...extra }
}

/** Why a runtime cannot run here, or null. Under CI a reason is a failure (thrown in beforeAll). */
export function missingBinary(name: string): string | null {
  const path = join(BIN, name)
  if (!existsSync(path)) return `${path} not found (npm ci installs it)`
  const r = spawnSync(path, ['--version'], {
    encoding: 'utf8',
    timeout: 30_000,
    env: childEnv({ WRANGLER_SEND_METRICS: 'false' }),
  })
  return r.status === 0 ? null : `${path} --version failed: ${r.error?.message ?? r.stderr.trim()}`
}

/**
 * `describe` for a runtime whose tool may be missing (`reason`, or null): outside CI it skips and
 * says why; under CI it fails in beforeAll with the reason.
 */
export function describeWithTool(reason: string | null, title: string, body: () => void): void {
  if (reason && !CI) {
    console.warn(`runtime smoke test '${title}' skipped: ${reason}`)
    describe.skip(title, body)
    return
  }
  describe(title, () => {
    beforeAll(() => {
      if (reason) throw new Error(`runtime smoke test '${title}' cannot run under CI: ${reason}`)
    })
    body()
  })
}

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address()
      srv.close(() => (address && typeof address === 'object' ? resolvePort(address.port) : reject(new Error('no port'))))
    })
  })
}

/** The variables that point an entry point's `s3_parquet` lake at the test S3 server's `bucket`. */
export function s3LakeEnv(s3: S3TestConfig, bucket: string): Record<string, string> {
  return {
    STORAGE_BACKEND: 's3_parquet',
    S3_BUCKET: bucket,
    AWS_ENDPOINT_URL: s3.endpoint,
    AWS_REGION: s3.region,
    S3_FORCE_PATH_STYLE: 'true',
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
  }
}

/**
 * `wrangler dev` of the Worker entry with the `wrangler.toml` and `worker.env` in `dir` (state,
 * build output and logs stay there), local workerd on 127.0.0.1:`port`; `extra` before the address.
 */
export function wranglerDevArgs(dir: string, port: number, inspectorPort: number, extra: string[] = []): string[] {
  return [
    'dev',
    join(ROOT, 'functions', 'worker.ts'),
    '--config',
    join(dir, 'wrangler.toml'),
    '--env-file',
    join(dir, 'worker.env'),
    '--persist-to',
    join(dir, 'state'),
    '--local',
    ...extra,
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--inspector-port',
    String(inspectorPort),
    '--show-interactive-dev-session=false',
  ]
}

export interface Running {
  url: string
  child: ChildProcess
  output: () => string
  startupMs: number
}

/**
 * Spawns `command` in its own process group (so the whole tree can be killed) and waits until
 * GET /healthz answers 200, or answers anything else for 10 s in a row (the health test then
 * shows why). Throws with the child's output if it exits or times out first.
 */
export async function start(
  command: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; port: number; timeoutMs: number },
): Promise<Running> {
  const t0 = performance.now()
  const child = spawn(command, args, { cwd: options.cwd, env: options.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  let log = ''
  child.stdout?.on('data', (d) => (log += d))
  child.stderr?.on('data', (d) => (log += d))
  const url = `http://127.0.0.1:${options.port}`
  const running: Running = { url, child, output: () => log, startupMs: 0 }
  const deadline = Date.now() + options.timeoutMs
  let unhealthySince: number | undefined
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await stop(running)
      throw new Error(`${command} exited (${child.exitCode ?? child.signalCode}) before serving:\n${log}`)
    }
    try {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2_000) })
      await res.body?.cancel()
      unhealthySince = res.ok ? undefined : (unhealthySince ?? Date.now())
      if (res.ok || Date.now() - unhealthySince! > 10_000) {
        running.startupMs = Math.round(performance.now() - t0)
        return running
      }
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  await stop(running)
  throw new Error(`${command} did not answer /healthz within ${options.timeoutMs} ms:\n${log}`)
}

/** SIGTERM to the child's process group, SIGKILL to whatever of it is left after 5 s. */
export async function stop(running: Running | undefined): Promise<void> {
  const pid = running?.child.pid
  if (!running || pid === undefined) return
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-pid, signal)
    } catch {
      // the group is gone
    }
  }
  const exited =
    running.child.exitCode !== null || running.child.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((r) => running.child.once('exit', () => r()))
  signalGroup('SIGTERM')
  await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))])
  signalGroup('SIGKILL') // workerd and any other straggler of the group
}
