/**
 * Child process for the "containers outlive their creator" test: creates and starts one
 * container with a fresh RuncRuntime, prints "started", and exits without cleaning anything up.
 * argv[2]: exec root; argv[3]: JSON ContainerSpecInput.
 */
import { pino } from 'pino';
import { RuncRuntime } from '../../../src/agent/runtime/runtime.js';
import type { ContainerSpecInput } from '../../../src/agent/runtime/types.js';

const [execRoot, specJson] = process.argv.slice(2);
const runtime = new RuncRuntime({ execRoot: execRoot!, logger: pino({ level: 'silent' }) });
const spec = JSON.parse(specJson!) as ContainerSpecInput;
await runtime.create(spec);
await runtime.start(spec.id);
process.stdout.write('started\n');
