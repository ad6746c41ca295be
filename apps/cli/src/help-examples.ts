/**
 * The closing block of a command's `--help`: command lines to copy, each optionally followed by `# why`.
 * apps/cli/test/help-examples.test.ts checks that every `--flag` in them is an option of the command it follows.
 */
export function examples(...lines: string[]): string {
  return `\nExamples:\n${lines.map((line) => `  ${line}`).join('\n')}`;
}
