// lsmseg finetune: not built yet (issue 5).
export async function run(_argv: string[]): Promise<number> {
  console.error("lsmseg finetune is not implemented yet (issue 5)");
  return 2;
}
