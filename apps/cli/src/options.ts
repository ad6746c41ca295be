import { InvalidArgumentError } from 'commander';

/** Commander argument parsers: a bad value is a usage error (exit 2) with the option named by commander. */
export function positiveInt(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1) throw new InvalidArgumentError('expected a positive integer');
  return parsed;
}

export function nonNegativeInt(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return parsed;
}

/** A comma-separated list of whole numbers (what they must satisfy is checked where they are used). */
export function intList(value: string): number[] {
  const items = value.split(',').map((item) => Number(item.trim()));
  if (!items.every(Number.isInteger)) throw new InvalidArgumentError('expected whole numbers separated by commas');
  return items;
}

export function oneOf<T extends string>(choices: readonly T[]): (value: string) => T {
  return (value) => {
    if (!(choices as readonly string[]).includes(value)) {
      throw new InvalidArgumentError(`expected one of ${choices.join(', ')}`);
    }
    return value as T;
  };
}

export function commaList<T extends string>(choices: readonly T[]): (value: string) => T[] {
  const parseOne = oneOf(choices);
  return (value) => value.split(',').map((item) => parseOne(item.trim()));
}

export function positiveNumber(value: string): number {
  const parsed = Number(value);
  if (!(parsed > 0) || !Number.isFinite(parsed)) throw new InvalidArgumentError('expected a positive number');
  return parsed;
}

export function nonNegativeNumber(value: string): number {
  const parsed = Number(value);
  if (!(parsed >= 0) || !Number.isFinite(parsed)) throw new InvalidArgumentError('expected a non-negative number');
  return parsed;
}

/** A probability mass such as top-p: greater than 0, at most 1. */
export function unitFraction(value: string): number {
  const parsed = Number(value);
  if (!(parsed > 0 && parsed <= 1)) throw new InvalidArgumentError('expected a number in (0, 1]');
  return parsed;
}

/** `--timeout <seconds>` as the milliseconds the library takes. */
export function seconds(value: string): number {
  return positiveNumber(value) * 1000;
}
