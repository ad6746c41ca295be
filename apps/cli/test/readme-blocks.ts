import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const README = fileURLToPath(new URL('../../../README.md', import.meta.url));

/** The first ``` block of `language` under the README heading `heading`: the text a user copies. */
export function readmeBlock(heading: string, language: string): string {
  const text = readFileSync(README, 'utf8');
  const section = text.indexOf(`\n${heading}\n`);
  if (section < 0) throw new Error(`README has no heading ${heading}`);
  const match = new RegExp('```' + language + '\\n([\\s\\S]*?)```').exec(text.slice(section));
  if (!match) throw new Error(`README's ${heading} has no \`\`\`${language} block`);
  return match[1]!;
}
