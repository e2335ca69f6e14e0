// lsmseg pretrain: not built yet (issue 6).
export async function run(_argv: string[]): Promise<number> {
  console.error("lsmseg pretrain is not implemented yet (issue 6)");
  return 2;
}
