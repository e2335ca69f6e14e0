// The launcher behind `--nproc N`: starts N copies of the same command on this machine with torchrun's
// environment (WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) and the cores split between them.
// With --nnodes/--node-rank/--master it joins a multi-machine run the same way.
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { availableParallelism } from "node:os";

export interface LaunchOptions {
  nproc: number;
  nnodes?: number;
  nodeRank?: number;
  /** host:port of rank 0's store; default 127.0.0.1 and a free port. */
  master?: string;
}

/** A free TCP port on the loopback interface. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Drops the launcher's own flags from argv. */
export function stripLaunchFlags(argv: string[]): string[] {
  const out: string[] = [];
  const withValue = new Set(["--nproc", "--nnodes", "--node-rank", "--master"]);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const eq = a.indexOf("=");
    const name = eq > 0 ? a.slice(0, eq) : a;
    if (withValue.has(name)) {
      if (eq < 0) i++;
      continue;
    }
    out.push(a);
  }
  return out;
}

/**
 * Runs `node <script> <argv>` as N local ranks; resolves to the exit code (the first failure's, and the
 * other ranks are stopped then). Output of rank > 0 is prefixed with its rank.
 */
export async function launch(script: string, argv: string[], o: LaunchOptions): Promise<number> {
  const nnodes = o.nnodes ?? 1;
  const nodeRank = o.nodeRank ?? 0;
  const world = o.nproc * nnodes;
  const [addr, portText] = (o.master ?? "").split(":");
  const port = portText ? Number(portText) : await freePort();
  const threads = Math.max(1, Math.floor(availableParallelism() / o.nproc));
  const children = Array.from({ length: o.nproc }, (_, local) => {
    const rank = nodeRank * o.nproc + local;
    const env = {
      ...process.env, WORLD_SIZE: String(world), RANK: String(rank), LOCAL_RANK: String(local), LOCAL_WORLD_SIZE: String(o.nproc),
      MASTER_ADDR: addr || "127.0.0.1", MASTER_PORT: String(port), LSMSEG_THREADS: process.env.LSMSEG_THREADS ?? String(threads),
    };
    const child = spawn(process.execPath, [script, ...argv], { env, stdio: ["ignore", "inherit", rank === 0 ? "inherit" : "pipe"] });
    child.stderr?.on("data", (d: Buffer) => process.stderr.write(d.toString().split("\n").map((l) => (l ? `[rank ${rank}] ${l}` : l)).join("\n")));
    return child;
  });
  const codes = await Promise.all(children.map((c) => new Promise<number>((resolve) => c.on("exit", (code, sig) => {
    if (code !== 0) for (const other of children) if (other.exitCode === null) other.kill("SIGTERM");
    resolve(code ?? (sig ? 128 : 1));
  }))));
  return codes.find((c) => c !== 0) ?? 0;
}
