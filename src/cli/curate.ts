// lsmseg curate: not built yet (issue 7).
export async function run(_argv: string[]): Promise<number> {
  console.error("lsmseg curate is not implemented yet (issue 7)");
  return 2;
}
