// Memory scopes. libtorch memory is invisible to the JS garbage collector, so freeing is explicit:
// `tidy(fn)` disposes every tensor made inside fn except what fn returns; `keep(t)` exempts a tensor
// (parameters, optimizer state, running statistics) from every enclosing scope. Tensors also free
// themselves when the JS object is collected (the native handle's finalizer), but that is only a
// safety net: a training loop that relies on it holds far more memory than it needs.

export interface Disposable {
  dispose(): void;
}

const scopes: Set<Disposable>[] = [];

/** Registers a new tensor with the innermost scope, if any. */
export function track(t: Disposable): void {
  const top = scopes[scopes.length - 1];
  if (top) top.add(t);
}

/** Removes `t` from every enclosing scope so that no tidy() disposes it. Returns `t`. */
export function keep<T extends Disposable>(t: T): T {
  for (const s of scopes) s.delete(t);
  return t;
}

function collect(value: unknown, out: Set<unknown>, depth = 0): void {
  if (value === null || typeof value !== "object" || depth > 4) return;
  if ("dispose" in value && typeof (value as Disposable).dispose === "function" && "handle" in value) {
    out.add(value);
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) collect(v, out, depth + 1);
  } else if (Object.getPrototypeOf(value) === Object.prototype || value instanceof Map) {
    const vals = value instanceof Map ? value.values() : Object.values(value);
    for (const v of vals) collect(v, out, depth + 1);
  }
}

/**
 * Runs `fn` in a scope: every tensor created inside is disposed when fn returns, except the
 * tensors in its result (a tensor, or arrays/plain objects of them), which move to the outer scope.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Disposable>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (err) {
    scopes.pop();
    for (const t of scope) t.dispose();
    throw err;
  }
  scopes.pop();
  if (result && typeof (result as { then?: unknown }).then === "function") {
    for (const t of scope) t.dispose();
    throw new Error("tidy(fn): fn returned a Promise; tidy scopes are synchronous (await outside, tidy each step inside)");
  }
  const survivors = new Set<unknown>();
  collect(result, survivors);
  for (const t of scope) {
    if (survivors.has(t)) track(t);
    else t.dispose();
  }
  return result;
}

/** How deep the scope stack is (for tests). */
export function scopeDepth(): number {
  return scopes.length;
}
