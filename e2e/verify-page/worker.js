// The same checks in a dedicated module worker: the verifier needs no DOM.
import * as verify from './hypersync-verify.js';
import { runChecks } from './checks.js';

const fixtures = await (await fetch('./fixtures.json')).json();
postMessage(await runChecks(verify, fixtures));
