#!/usr/bin/env node
// The command line lives in the CLI package (apps/cli), bundled inside this package.
import '@seqpar/cli/bin/seqpar.js';
