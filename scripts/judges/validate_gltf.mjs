// The Khronos glTF validator over each file named: one JSON line per file,
// {file, errors, warnings, first: [up to three error messages]}. Exit 1 if any file has errors.
// Called by check_meshes.py, which says where the validator is installed.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const require = createRequire(join(process.env.ORFEAS_JUDGES_NODE_MODULES, '..', 'package.json'));
const validator = require('gltf-validator');

let withErrors = 0;
for (const file of process.argv.slice(2)) {
  const report = await validator.validateBytes(new Uint8Array(readFileSync(file)), { maxIssues: 50 });
  const { numErrors, numWarnings, messages } = report.issues;
  if (numErrors > 0) withErrors += 1;
  const first = messages.filter((m) => m.severity === 0).slice(0, 3).map((m) => `${m.code} ${m.pointer ?? ''} ${m.message}`);
  console.log(JSON.stringify({ file, errors: numErrors, warnings: numWarnings, first }));
}
process.exit(withErrors ? 1 : 0);
