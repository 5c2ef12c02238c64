/** The common tail of the core front and the storage wrappers (read cache, op log): a storage with some members replaced. */

/**
 * `target` seen through a Proxy: an own member of `overrides` wins; every other member is the
 * target's own, methods bound to it (so private fields and `this` keep working).
 */
export function overlay<T extends object>(target: T, overrides: object): T {
  return new Proxy(target, {
    get(t, prop) {
      if (Object.hasOwn(overrides, prop)) return overrides[prop as keyof typeof overrides]
      const value = Reflect.get(t, prop, t)
      return typeof value === 'function' ? value.bind(t) : value
    },
    has(t, prop) {
      return Object.hasOwn(overrides, prop) || Reflect.has(t, prop)
    },
  })
}
