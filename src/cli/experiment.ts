// lsmseg experiment: not built yet (issue 8).
export async function run(_argv: string[]): Promise<number> {
  console.error("lsmseg experiment is not implemented yet (issue 8)");
  return 2;
}
