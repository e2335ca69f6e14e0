// TIFF's LZW (TIFF 6.0 §13): MSB-first codes of 9 to 12 bits, Clear = 256, EOI = 257, and libtiff's "early
// change" (the code width grows one code before the table would need it). Hand-written because the npm TIFF
// libraries decode LZW but none encodes it.

const CLEAR = 256, EOI = 257, FIRST = 258;

/** Decodes one LZW-compressed strip or tile; `expected` (bytes) sizes the output. */
export function lzwDecode(src: Uint8Array, expected: number): Uint8Array {
  const out = new Uint8Array(expected);
  const prefix = new Int32Array(4096);
  const suffix = new Uint8Array(4096);
  const length = new Int32Array(4096);
  for (let i = 0; i < 256; i++) { prefix[i] = -1; suffix[i] = i; length[i] = 1; }
  let nbits = 9, next = FIRST, prev = -1, o = 0;
  let bitPos = 0;
  const totalBits = src.length * 8;
  const read = (): number => {
    if (bitPos + nbits > totalBits) return EOI;
    let v = 0;
    for (let k = 0; k < nbits; k++, bitPos++) v = (v << 1) | ((src[bitPos >> 3] >> (7 - (bitPos & 7))) & 1);
    return v;
  };
  const emit = (code: number): void => {
    const n = length[code];
    if (o + n > out.length) throw new Error(`LZW data decodes to more than the expected ${expected} bytes`);
    for (let k = o + n - 1, c = code; k >= o; k--, c = prefix[c]) out[k] = suffix[c];
    o += n;
  };
  const firstOf = (code: number): number => {
    while (prefix[code] >= 0) code = prefix[code];
    return suffix[code];
  };
  while (true) {
    const code = read();
    if (code === EOI) break;
    if (code === CLEAR) {
      nbits = 9; next = FIRST; prev = -1;
      continue;
    }
    if (prev < 0) {
      if (code > 255) throw new Error(`LZW code ${code} after a clear code`);
      emit(code);
      prev = code;
      continue;
    }
    if (code > next) throw new Error(`LZW code ${code} is beyond the table (${next})`);
    if (next < 4096) {
      prefix[next] = prev;
      length[next] = length[prev] + 1;
      suffix[next] = code < next ? firstOf(code) : firstOf(prev);
      next++;
    }
    emit(code);
    prev = code;
    if (next >= (1 << nbits) - 1 && nbits < 12) nbits++;
  }
  return o === out.length ? out : out.subarray(0, o);
}

/** Encodes bytes with TIFF LZW as libtiff does (Clear first, Clear again when the table is full). */
export function lzwEncode(src: Uint8Array): Uint8Array {
  let out = new Uint8Array(Math.max(64, (src.length * 3) >> 1));
  let o = 0, acc = 0, accBits = 0;
  const put = (code: number, nbits: number): void => {
    acc = (acc << nbits) | code;
    accBits += nbits;
    while (accBits >= 8) {
      if (o >= out.length) { const bigger = new Uint8Array(out.length * 2); bigger.set(out); out = bigger; }
      out[o++] = (acc >>> (accBits - 8)) & 255;
      accBits -= 8;
    }
    acc &= (1 << accBits) - 1;
  };
  // Table of (prefix code, byte) → code, reset cheaply by a generation stamp.
  const codes = new Int16Array(1 << 20);
  const stamp = new Uint32Array(1 << 20);
  let gen = 1, nbits = 9, maxcode = 511, free = FIRST;
  put(CLEAR, nbits);
  if (src.length === 0) { put(EOI, nbits); return finish(); }
  let w = src[0];
  for (let i = 1; i < src.length; i++) {
    const c = src[i];
    const key = (w << 8) | c;
    if (stamp[key] === gen) { w = codes[key]; continue; }
    put(w, nbits);
    stamp[key] = gen;
    codes[key] = free++;
    if (free === 4094) {
      put(CLEAR, nbits);
      gen++; free = FIRST; nbits = 9; maxcode = 511;
    } else if (free > maxcode) {
      nbits++; maxcode = (1 << nbits) - 1;
    }
    w = c;
  }
  put(w, nbits);
  free++;
  if (free === 4094) { put(CLEAR, nbits); nbits = 9; } else if (free > maxcode) nbits++;
  put(EOI, nbits);
  return finish();

  function finish(): Uint8Array {
    if (accBits > 0) put(0, 8 - accBits);
    return out.slice(0, o);
  }
}
