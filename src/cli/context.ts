/** Global options (`--config`, `--data-dir`, `--backend`) to a config, an environment and a storage. */

import { readFile } from 'node:fs/promises'
import { type Env, parseConfig } from '../config/load.js'
import type { DataStorage } from '../core/types.js'
import { createStorage } from '../node.js'
import { CliError } from './errors.js'

export interface GlobalOptions {
  config?: string
  dataDir?: string
  backend?: string
}

export interface CliContext {
  /** The parsed config file, or undefined for defaults. */
  config: unknown
  /** `process.env` with `--data-dir` and `--backend` applied as `DATA_DIR` and `STORAGE_BACKEND`. */
  env: Env
}

/** Reads the config file (JSON) and applies the flag overrides; validates the result once. */
export async function loadContext(opts: GlobalOptions, baseEnv: Env = process.env): Promise<CliContext> {
  let config: unknown
  if (opts.config) {
    let text: string
    try {
      text = await readFile(opts.config, 'utf8')
    } catch (err) {
      throw new CliError(`cannot read config file '${opts.config}': ${(err as Error).message}`)
    }
    try {
      config = JSON.parse(text)
    } catch (err) {
      throw new CliError(`config file '${opts.config}' is not valid JSON: ${(err as Error).message}`)
    }
  }
  const env: Env = { ...baseEnv }
  if (opts.dataDir !== undefined) env.DATA_DIR = opts.dataDir
  if (opts.backend !== undefined) env.STORAGE_BACKEND = opts.backend
  parseConfig(config, env) // throws ConfigError naming every problem, before anything starts
  return { config, env }
}

/**
 * Opens the storage, runs `fn`, and always closes it. Its op log keeps failed operations but does
 * not print them: the CLI reports each error itself, once (`friday: ...` on stderr).
 */
export async function withStorage<T>(ctx: CliContext, fn: (storage: DataStorage) => Promise<T>): Promise<T> {
  const storage = createStorage(ctx.config, ctx.env, { oplog: { printFailures: false } })
  try {
    return await fn(storage)
  } finally {
    await storage.close()
  }
}

/** `CliError` (exit 1) unless `dataset` exists; the message names the datasets there are. */
export async function requireDataset(storage: DataStorage, dataset: string): Promise<void> {
  const datasets = await storage.listDatasets()
  if (datasets.includes(dataset)) return
  const known = datasets.length ? `; datasets: ${datasets.join(', ')}` : '; there are no datasets yet'
  throw new CliError(`dataset '${dataset}' not found${known}`)
}
