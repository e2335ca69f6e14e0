// lsmseg serve: not built yet (issue 8).
export async function run(_argv: string[]): Promise<number> {
  console.error("lsmseg serve is not implemented yet (issue 8)");
  return 2;
}
