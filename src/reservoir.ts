/** A fixed-size uniform sample of a stream of numbers, for percentiles in constant memory. */

/** Samples kept per reservoir. */
export const RESERVOIR_SIZE = 512

/** Vitter's algorithm R: after n values, each is in the sample with probability size/n. */
export class Reservoir {
  private readonly samples = new Float64Array(RESERVOIR_SIZE)
  private seen = 0

  add(value: number): void {
    if (this.seen < RESERVOIR_SIZE) this.samples[this.seen] = value
    else {
      const j = Math.floor(Math.random() * (this.seen + 1))
      if (j < RESERVOIR_SIZE) this.samples[j] = value
    }
    this.seen++
  }

  /** Nearest-rank percentiles (0-100) of the sample, rounded to 0.01; null when empty. */
  percentiles(...ps: number[]): (number | null)[] {
    const n = Math.min(this.seen, RESERVOIR_SIZE)
    if (n === 0) return ps.map(() => null)
    const sorted = this.samples.slice(0, n).sort()
    return ps.map((p) => Math.round(sorted[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))] * 100) / 100)
  }
}
