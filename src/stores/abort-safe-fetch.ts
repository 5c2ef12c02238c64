/**
 * A `fetch` for the AWS SDK's fetch-based request handler (`FetchHttpHandler`'s `customFetch`)
 * under which aborting a request always reaches it on Node.
 *
 * The handler puts the call's `AbortSignal` on a `Request` and passes only that `Request` to
 * `fetch`. Node's `fetch` (undici, Node 20 to 24 at least) copies it into a second `Request` whose
 * signal follows the first one's through a weak reference; once nothing holds the first `Request`,
 * a garbage collection cuts that link, and aborting the signal no longer reaches the request: it
 * stays in flight (its socket open, its body perhaps still being sent) after the caller was told it
 * timed out (nodejs/undici#3644 and #4068, nodejs/node#55428). This `fetch` holds the `Request`
 * until `fetch` settles, then for as long as the answer's body is alive. Elsewhere (workerd, Deno,
 * Bun) it only forwards to `fetch`.
 */

/** Answer body -> the `Request` it answers: keeps the request's abort link alive while the body is. */
const heldWhileBodyLives = new WeakMap<object, unknown>()

export function abortSafeFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
  // the reaction below holds `input` while `fetch` is pending (fetch holds its own promise)
  return fetch(input, init).then((response) => {
    if (response.body) heldWhileBodyLives.set(response.body, input)
    return response
  })
}
