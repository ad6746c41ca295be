/**
 * What `import ... from 'seqpar'` gives a program: the cluster API and what its requests and results are made of.
 * The installed package re-exports this module (its root index.js); the command line is one more user of it.
 */
export * from '@seqpar/runtime';
export { SeqparError, UsageError, isSeqparError, type ErrorCode } from '@seqpar/core';
export { tensor, elementCount, type Tensor } from '@seqpar/core';
export { readNpy, readNpyFile, readFloat32NpyFile, encodeNpy, writeNpyFile, type NpyArray, type NpyDtype } from '@seqpar/core';
export { randomTensor, seededRandom, referenceAttention, type ReferenceAttention, type MaskSpec } from '@seqpar/core';
export { STRATEGY_NAMES, type StrategyName } from '@seqpar/core';
export type { TransportKind } from '@seqpar/transport';
export { makeTinyModel, loadTokenizer, type TinyModelOptions, type TextTokenizer, type GenerateEvent, type GenerateSummary } from '@seqpar/model';
export { choosePlan, DECLARED_PROFILES, type Plan, type PlanRequest, type HardwareProfile } from '@seqpar/planner';
export { calibrateLocalProfile, type CalibrationOptions } from './calibration/calibrate-profile.js';
