// The wfc extension: `.wf` highlighting comes from the grammar in
// syntaxes/; this file starts the language server, `wfc lsp`, over stdio.
// Plain JavaScript; `npm run bundle` packs it with vscode-languageclient
// into dist/extension.js, which is what VS Code loads.
'use strict';

const vscode = require('vscode');
const { LanguageClient } = require('vscode-languageclient/node');

/** @type {LanguageClient | undefined} */
let client;
/** @type {vscode.OutputChannel | undefined} */
let output;

/** The `wfc` binary from the `wfc.path` setting (`wfc` on the PATH by default). */
function wfcPath() {
  const configured = vscode.workspace.getConfiguration('wfc').get('path');
  return typeof configured === 'string' && configured.trim() !== '' ? configured.trim() : 'wfc';
}

async function startClient() {
  const command = wfcPath();
  // No `transport` on purpose: with TransportKind.stdio the client would
  // append `--stdio` to the arguments; without it, it still talks over the
  // child's stdin and stdout and runs exactly `wfc lsp`.
  const serverOptions = { command, args: ['lsp'] };
  const clientOptions = {
    documentSelector: [
      { scheme: 'file', language: 'wf' },
      { scheme: 'untitled', language: 'wf' },
    ],
    outputChannel: output,
    synchronize: {
      // Imports make one file's diagnostics depend on others.
      fileEvents: vscode.workspace.createFileSystemWatcher('**/*.wf'),
    },
  };
  client = new LanguageClient('wfc', 'wfc language server', serverOptions, clientOptions);
  try {
    await client.start();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    client = undefined;
    const choice = await vscode.window.showErrorMessage(
      `Could not start the wfc language server (\`${command} lsp\`): ${message}. ` +
        'Install wfc or set `wfc.path` to the binary.',
      'Open Settings',
    );
    if (choice === 'Open Settings') {
      await vscode.commands.executeCommand('workbench.action.openSettings', 'wfc.path');
    }
  }
}

async function stopClient() {
  if (client) {
    const running = client;
    client = undefined;
    try {
      await running.stop();
    } catch {
      // A server that never started or already exited has nothing to stop.
    }
  }
}

async function restartClient() {
  await stopClient();
  await startClient();
}

/** @param {vscode.ExtensionContext} context */
async function activate(context) {
  output = vscode.window.createOutputChannel('wfc language server');
  context.subscriptions.push(
    output,
    vscode.commands.registerCommand('wfc.restartServer', restartClient),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration('wfc.path')) {
        void restartClient();
      }
    }),
  );
  await startClient();
}

function deactivate() {
  return stopClient();
}

module.exports = { activate, deactivate };
