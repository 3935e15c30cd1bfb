// The browser test's npm packages (package.json) are looked for before
// anything imports them, so that a checkout without them fails with one
// line naming the command to run instead of Node's ERR_MODULE_NOT_FOUND.
// Imports nothing outside Node itself.
import {createRequire} from 'node:module';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PACKAGES = ['playwright-core', 'axe-core'];

/* Exits 1 with one line on stderr when a package is missing from
 * tests/browser/node_modules; returns otherwise. */
export function needPackages() {
  const require = createRequire(path.join(HERE, 'package.json'));
  const missing = PACKAGES.filter((p) => {
    try {
      require.resolve(p + '/package.json');
      return false;
    } catch (e) {
      return true;
    }
  });
  if (!missing.length) return;
  console.error(`FAIL: ${missing.join(' and ')} missing from ${path.join(HERE, 'node_modules')}: ` +
    `run 'npm ci' in ${HERE} (packaging/quickstart.sh test and .ci/run do)`);
  process.exit(1);
}
