// The cavra extension: starts the language server, `cavra lsp`, for .cavra
// files. Highlighting needs no code: package.json contributes the grammar.
'use strict';

const vscode = require('vscode');
const { LanguageClient } = require('vscode-languageclient/node');

/** @type {LanguageClient | undefined} */
let client;

/** @param {vscode.ExtensionContext} context */
async function activate(context) {
  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      // A new server path takes effect without reloading the window.
      if (event.affectsConfiguration('cavra.server.path')) {
        await stopServer();
        await startServer();
      }
    }),
  );
  await startServer();
}

async function deactivate() {
  await stopServer();
}

async function startServer() {
  const command = vscode.workspace.getConfiguration('cavra').get('server.path') || 'cavra';
  // No `transport`: with TransportKind.stdio the client would append `--stdio`,
  // which `cavra lsp` does not take; plain stdio is the default.
  const serverOptions = { command, args: ['lsp'] };
  const clientOptions = {
    documentSelector: [
      { scheme: 'file', language: 'cavra' },
      { scheme: 'untitled', language: 'cavra' },
    ],
  };
  client = new LanguageClient('cavra', 'cavra language server', serverOptions, clientOptions);
  try {
    await client.start();
  } catch (error) {
    // Highlighting still works without the server: say why it is missing.
    client = undefined;
    const message = error instanceof Error ? error.message : String(error);
    vscode.window.showErrorMessage(
      `cavra: could not start the language server \`${command} lsp\` (${message}). ` +
        'Install cavra, or set `cavra.server.path` to the cavra program.',
    );
  }
}

async function stopServer() {
  const running = client;
  client = undefined;
  if (running) {
    await running.stop();
  }
}

module.exports = { activate, deactivate };
