import { describe, expect, it } from 'vitest';
import { runCli } from './run-cli.js';

// Every command's --help ends with examples, and they cannot drift from the options: each `--flag` in an
// example is an option of the `seqpar <command>` it belongs to.
const top = await runCli(['--help']);
const commands = [...top.stdout.matchAll(/^ {2}([a-z-]+) /gm)].map((match) => match[1]!).filter((name) => name !== 'help');
const helps = new Map(await Promise.all(commands.map(async (name) => [name, await runCli([name, '--help'])] as const)));
const optionsOf = (help: string) => new Set([...help.matchAll(/^ +(?:-\w, )?(--[a-z-]+)/gm)].map((match) => match[1]!));
const examplesOf = (help: string) =>
  (help.split('\nExamples:\n')[1] ?? '')
    .split('\n')
    .filter((line) => line.startsWith('  '))
    .map((line) => line.split('   #')[0]!.trim());

describe('--help', () => {
  it('lists every command, netns included', () => {
    expect(commands).toEqual(['attention', 'generate', 'serve', 'make-qkv', 'make-tiny-model', 'plan', 'simulate', 'netns', 'coordinator', 'worker']);
  });

  it.each(commands)('%s --help exits 0 and ends with examples whose options exist', (name) => {
    const help = helps.get(name)!;
    expect(help.code).toBe(0);
    const examples = examplesOf(help.stdout);
    expect(examples.length).toBeGreaterThanOrEqual(2);
    for (const example of examples) {
      const words = example.split(/\s+/);
      const command = words[words.indexOf('seqpar') + 1]!;
      expect(commands, example).toContain(command);
      const known = optionsOf(helps.get(command)!.stdout);
      for (const flag of words.filter((word) => word.startsWith('--'))) expect(known, `${flag} in: ${example}`).toContain(flag);
    }
  });
});
