// Run the core's unit tests (tests/core) inside Pyodide, in node.
//
//   node tests/pyodide/run_core_tests.mjs PYODIDE_DIR NUMPY_WHEEL REPO_ROOT
//
// PYODIDE_DIR: the npm pyodide package (build.py's pyodide_dir()); NUMPY_WHEEL: the
// Pyodide build of numpy (build.py's numpy_wheel()). Nothing is fetched from the network.
// The repository's pycore/ and tests/core/ are copied into Pyodide's in-memory file
// system (/home/pyodide/...), so the tests cannot touch the checkout, and
// tests/pyodide/mini_runner.py runs them. Exit status 0 only when every test passed
// and at least one ran.

import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const HOME = "/home/pyodide";

function copyTree(FS, hostDir, fsDir) {
  FS.mkdirTree(fsDir);
  for (const entry of fs.readdirSync(hostDir, { withFileTypes: true })) {
    if (entry.name === "__pycache__" || entry.name.endsWith(".pyc")) continue;
    const host = path.join(hostDir, entry.name);
    const dest = `${fsDir}/${entry.name}`;
    if (entry.isDirectory()) copyTree(FS, host, dest);
    else if (entry.isFile()) FS.writeFile(dest, fs.readFileSync(host));
  }
}

async function main() {
  const args = process.argv.slice(2);
  if (args.length !== 3) {
    console.error("usage: node run_core_tests.mjs PYODIDE_DIR NUMPY_WHEEL REPO_ROOT");
    return 2;
  }
  const [pyodideDir, numpyWheel, repoRoot] = args.map((p) => path.resolve(p));
  const t0 = performance.now();

  const { loadPyodide } = await import(pathToFileURL(path.join(pyodideDir, "pyodide.mjs")).href);
  const pyodide = await loadPyodide({ indexURL: pyodideDir + path.sep });
  // A local path is read with node's fs: no network, no lock-file lookup. build.py has
  // already checked the wheel against pyodide-lock.json's sha256.
  await pyodide.loadPackage(numpyWheel, { messageCallback: () => {} });
  const expected = path.basename(numpyWheel).split("-")[1];
  const got = pyodide.runPython("import numpy; numpy.__version__");
  const pyVersion = pyodide.runPython("import sys; sys.version.split()[0]");
  if (got !== expected) {
    console.error(`numpy ${got} loaded, the wheel says ${expected}`);
    return 2;
  }
  console.log(
    `Pyodide ${pyodide.version} (Python ${pyVersion}) with numpy ${got} ready in ` +
      `${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );

  copyTree(pyodide.FS, path.join(repoRoot, "pycore"), `${HOME}/pycore`);
  copyTree(pyodide.FS, path.join(repoRoot, "tests", "core"), `${HOME}/tests/core`);
  for (const f of ["__init__.py", "core.py", "folder_names.json"]) {
    // The core tests' helpers (tests/support/core.py) and the folder-name table
    // (test_names.py), without the browser tests' helpers.
    pyodide.FS.mkdirTree(`${HOME}/tests/support`);
    pyodide.FS.writeFile(`${HOME}/tests/support/${f}`, fs.readFileSync(path.join(repoRoot, "tests", "support", f)));
  }
  const runner = fs.readFileSync(new URL("./mini_runner.py", import.meta.url));
  pyodide.FS.mkdirTree(`${HOME}/.mini_runner`);
  pyodide.FS.writeFile(`${HOME}/.mini_runner/mini_runner.py`, runner);

  const status = await pyodide.runPythonAsync(`
import os, sys
os.chdir("${HOME}")
sys.path[:0] = ["${HOME}/.mini_runner", "${HOME}", "${HOME}/tests", "${HOME}/tests/core"]
import mini_runner
await mini_runner.main("${HOME}/tests/core")
`);
  return status;
}

main().then(
  (status) => process.exit(status),
  (err) => {
    console.error(err);
    process.exit(2);
  },
);
