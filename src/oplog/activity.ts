/**
 * Which store activities of one storage instance overlapped. Request counts come from
 * `requestStats()` deltas, which cannot tell two concurrent operations apart; an operation that
 * overlapped another (or an op-log flush) is flagged instead of being attributed a guess.
 */

export class ActivityTracker {
  private active = 0
  private starts = 0

  /**
   * Marks an activity as started. Call the returned function when it ends: it returns true
   * when another activity ran during any part of this one.
   */
  begin(): () => boolean {
    const alone = this.active === 0
    this.active++
    const mark = ++this.starts
    let ended = false
    let shared = false
    return () => {
      if (!ended) {
        ended = true
        this.active--
        shared = !alone || this.starts !== mark
      }
      return shared
    }
  }
}
