// lsmseg predict: not built yet (issue 5).
export async function run(_argv: string[]): Promise<number> {
  console.error("lsmseg predict is not implemented yet (issue 5)");
  return 2;
}
