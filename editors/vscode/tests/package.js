// What `vsce package` would put in the extension: the bundle, the grammar
// and the language configuration, and no dependency left unbundled; and
// the bundle loads with nothing but `vscode` (stubbed here) beside it.
'use strict';

const { execFileSync } = require('node:child_process');
const Module = require('node:module');
const path = require('node:path');

const vsce = path.join(__dirname, '..', 'node_modules', '.bin', 'vsce');
const listed = execFileSync(vsce, ['ls'], {
  cwd: path.join(__dirname, '..'),
  encoding: 'utf8',
})
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line !== '');

const problems = [];
for (const needed of ['dist/extension.js', 'syntaxes/wf.tmLanguage.json', 'language-configuration.json', 'package.json']) {
  if (!listed.includes(needed)) {
    problems.push(`the package lacks ${needed}`);
  }
}
for (const file of listed) {
  if (file.startsWith('node_modules/') || file.startsWith('src/') || file.startsWith('tests/')) {
    problems.push(`the package ships ${file}, which the bundle already holds or nothing needs`);
  }
}
if (listed.length > 10) {
  problems.push(`the package has ${listed.length} files: ${listed.join(', ')}`);
}
// Every name of the stub is a class, as much of VS Code's API is.
const stub = { get: (target, name) => (name in target ? target[name] : (target[name] = new Proxy(class {}, stub))) };
const load = Module._load;
Module._load = function (request, ...rest) {
  return request === 'vscode' ? new Proxy({}, stub) : load.call(this, request, ...rest);
};
const extension = require(path.join(__dirname, '..', 'dist', 'extension.js'));
if (typeof extension.activate !== 'function' || typeof extension.deactivate !== 'function') {
  problems.push('the bundle does not export activate and deactivate');
}

if (problems.length > 0) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log(`✓ the package holds ${listed.length} files: ${listed.join(', ')}`);
