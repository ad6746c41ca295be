import type { Command } from 'commander';
import { register as attention } from './attention.js';
import { register as coordinator } from './coordinator.js';
import { register as generate } from './generate.js';
import { register as makeQkv } from './make-qkv.js';
import { register as makeTinyModel } from './make-tiny-model.js';
import { register as netns } from './netns.js';
import { register as plan } from './plan.js';
import { register as serve } from './serve.js';
import { register as simulate } from './simulate.js';
import { register as worker } from './worker.js';

/** Every `seqpar` subcommand, in the order `--help` lists them. */
export const commands: ReadonlyArray<(program: Command) => void> = [attention, generate, serve, makeQkv, makeTinyModel, plan, simulate, netns, coordinator, worker];
