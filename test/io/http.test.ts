// OME-Zarr over HTTP: a loopback node:http server serves the fixture stores (with Range support, for shards);
// region reads fetch only the chunks they touch. Also: numcodecs' blosc (WASM) decodes in a worker thread.
import assert from "node:assert/strict";
import { createReadStream, existsSync, readFileSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { type AddressInfo } from "node:net";
import { join, normalize } from "node:path";
import { after, before, test } from "node:test";
import { bytesOf, openVolume, readVolume } from "../../src/io/index.ts";
import { tsWorker } from "../../src/util/workers.ts";
import { sha256 } from "./pattern.ts";

const FIX = join(import.meta.dirname, "../../fixtures/io/public");
const expected = JSON.parse(readFileSync(join(FIX, "expected.json"), "utf8")) as Array<{ path: string; options: Record<string, number>; sha256: string }>;
let server: Server;
let base = "";
const requests: string[] = [];

before(async () => {
  server = createServer((req, res) => {
    let url = decodeURIComponent((req.url ?? "/").split("?")[0]);
    // /norange/… answers as servers without Range support do: the whole file, 200
    const noRange = url.startsWith("/norange/");
    if (noRange) url = url.slice("/norange".length);
    const file = normalize(join(FIX, url));
    requests.push(`${req.method} ${url}${req.headers.range ? ` ${req.headers.range}` : ""}`);
    if (!file.startsWith(FIX) || !existsSync(file) || statSync(file).isDirectory()) {
      res.writeHead(404).end();
      return;
    }
    const size = statSync(file).size;
    const m = noRange ? null : /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? "");
    if (m) {
      // "bytes=a-b", or a suffix "bytes=-n"
      const start = m[1] === "" ? size - Number(m[2]) : Number(m[1]);
      const end = m[1] === "" || m[2] === "" ? size - 1 : Number(m[2]);
      res.writeHead(206, { "Content-Length": end - start + 1, "Content-Range": `bytes ${start}-${end}/${size}` });
      createReadStream(file, { start, end }).pipe(res);
      return;
    }
    res.writeHead(200, { "Content-Length": size });
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => server.close());

for (const name of ["v2_default_pyramid.ome.zarr", "v3_zstd.ome.zarr", "v3_sharded.ome.zarr", "bioformats2raw.zarr"]) {
  test(`reads ${name} over HTTP as from disk`, async () => {
    const e = expected.find((x) => x.path === name && Object.keys(x.options).length === 0)!;
    const vol = await readVolume(`${base}/${name}`);
    assert.equal(sha256(bytesOf(vol.data)), e.sha256);
  });
}

test("a region read over HTTP fetches only the chunks it touches", async () => {
  // 8×16×16 in chunks of 4×8×8: the box z 1..2, y 9..12, x 2..5 lies in one chunk (0, 1, 0)
  const src = await openVolume(`${base}/v2_default_pyramid.ome.zarr`);
  requests.length = 0;
  const r = await src.readRegion({ start: [1, 9, 2], size: [2, 4, 4] });
  assert.deepEqual(requests, ["GET /v2_default_pyramid.ome.zarr/0/0.1.0"]);
  const whole = await readVolume(join(FIX, "v2_default_pyramid.ome.zarr"));
  for (let z = 0; z < 2; z++) for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) {
    assert.equal(r.data[(z * 4 + y) * 4 + x], whole.data[((z + 1) * 16 + y + 9) * 16 + x + 2]);
  }
  // a box across 2 × 1 × 2 chunks fetches those 4
  requests.length = 0;
  await src.readRegion({ start: [3, 0, 6], size: [2, 8, 4] });
  assert.deepEqual(requests.sort(), ["/0/0.0.0", "/0/0.0.1", "/0/1.0.0", "/0/1.0.1"].map((k) => `GET /v2_default_pyramid.ome.zarr${k}`));
});

test("a region of a sharded store over HTTP reads the shard index and one inner chunk by Range", async () => {
  const src = await openVolume(`${base}/v3_sharded.ome.zarr`);
  requests.length = 0;
  await src.readRegion({ start: [0, 0, 0], size: [2, 8, 8] });
  // the shard's size (HEAD), its index (a range at the end), one inner chunk (a range): never the whole shard
  const shard = "/v3_sharded.ome.zarr/0/c/0/0/0";
  assert.equal(requests.length, 3, requests.join("\n"));
  assert.ok(requests.includes(`HEAD ${shard}`), requests.join("\n"));
  assert.equal(requests.filter((r) => r.startsWith(`GET ${shard} bytes=`)).length, 2, requests.join("\n"));
});

test("a sharded store reads from a server without Range support (python's http.server) too", async () => {
  const e = expected.find((x) => x.path === "v3_sharded.ome.zarr")!;
  const vol = await readVolume(`${base}/norange/v3_sharded.ome.zarr`);
  assert.equal(sha256(bytesOf(vol.data)), e.sha256);
});

test("an HTTP store that does not exist is refused with its URL", async () => {
  await assert.rejects(openVolume(`${base}/nothing.ome.zarr`), /nothing\.ome\.zarr: not a Zarr array/);
});

test("blosc (numcodecs' WASM) decodes in a worker thread", async () => {
  const e = expected.find((x) => x.path === "v2_blosc_zstd_bitshuffle.zarr")!;
  const w = tsWorker(new URL("./workers/read_sha.ts", import.meta.url), { workerData: { path: join(FIX, e.path) } });
  const got = await new Promise((resolve, reject) => { w.once("message", resolve); w.once("error", reject); });
  await w.terminate();
  assert.equal(got, e.sha256);
});
