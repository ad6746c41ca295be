export async function main(argv: string[]): Promise<number> {
  process.stdout.write(`seqpar ${argv.join(' ')}\n`);
  return 0;
}
