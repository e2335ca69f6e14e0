// Worker for test/io/http.test.ts: reads the volume named in workerData and posts the sha256 of its voxels.
import { createHash } from "node:crypto";
import { parentPort, workerData } from "node:worker_threads";
import { bytesOf, readVolume } from "../../../src/io/index.ts";

const vol = await readVolume((workerData as { path: string }).path);
parentPort!.postMessage(createHash("sha256").update(bytesOf(vol.data)).digest("hex"));
