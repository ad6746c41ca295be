#!/usr/bin/env node
import { main } from '../dist/main.js';

const code = await main(process.argv.slice(2));
// Every command closes what it opened before main() resolves; a socket's or heartbeat's timer still winding down
// must not keep a finished command alive for seconds. stdout and stderr are synchronous for files and pipes here.
process.exit(code);
