// The TextMate grammar against every bundled pack, tokenized by the libraries
// VS Code itself uses (vscode-textmate with the Oniguruma regex engine):
//
// - every token that is not blank has a scope of its own, not just
//   `source.cavra` or a region's `meta.*` scope (which says nothing about
//   the token: an unmatched word inside a decision would still carry
//   `meta.decision.cavra`);
// - packs that parse have no `invalid.illegal` token: only the files a corpus
//   case's expected output reports a syntax error (E0001) in may have one;
// - a small sample gets the scope kinds themes colour by.
//
// Run with `node --test` in editors/vscode after `npm ci`.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const vsctm = require('vscode-textmate');
const oniguruma = require('vscode-oniguruma');

const EXTENSION_DIR = path.resolve(__dirname, '..');
const REPO_ROOT = path.resolve(EXTENSION_DIR, '..', '..');
const GRAMMAR_PATH = path.join(EXTENSION_DIR, 'syntaxes', 'cavra.tmLanguage.json');
const PACK_DIRS = ['rules', path.join('tests', 'corpus')];
/** At most this many problems are listed, so a broken grammar gives a readable failure. */
const MAX_LISTED = 60;

let grammarPromise;

/** The grammar, loaded once for all tests. */
function loadGrammar() {
  grammarPromise ??= (async () => {
    const wasm = fs.readFileSync(require.resolve('vscode-oniguruma/release/onig.wasm'));
    // The Buffer may be a view into a larger pool: hand over exactly its bytes.
    await oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength));
    const registry = new vsctm.Registry({
      onigLib: Promise.resolve({
        createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
        createOnigString: (text) => new oniguruma.OnigString(text),
      }),
      loadGrammar: async (scopeName) =>
        scopeName === 'source.cavra' ? vsctm.parseRawGrammar(fs.readFileSync(GRAMMAR_PATH, 'utf8'), GRAMMAR_PATH) : null,
    });
    const grammar = await registry.loadGrammar('source.cavra');
    assert.ok(grammar, `could not load ${GRAMMAR_PATH}`);
    return grammar;
  })();
  return grammarPromise;
}

/** Every token of `text`, line by line as an editor sees it: `{ line, column, text, scopes }` (1-based). */
function tokenize(grammar, text) {
  const tokens = [];
  let state = vsctm.INITIAL;
  text.split(/\r?\n/).forEach((line, index) => {
    const result = grammar.tokenizeLine(line, state);
    assert.ok(!result.stoppedEarly, `tokenizing stopped early on line ${index + 1}`);
    for (const token of result.tokens) {
      tokens.push({
        line: index + 1,
        column: token.startIndex + 1,
        text: line.slice(token.startIndex, token.endIndex),
        scopes: token.scopes,
      });
    }
    state = result.ruleStack;
  });
  return tokens;
}

/** The files under `dir` whose names end with `suffix`, recursively, in a stable order. */
function filesUnder(dir, suffix) {
  const found = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      found.push(...filesUnder(full, suffix));
    } else if (entry.isFile() && entry.name.endsWith(suffix)) {
      found.push(full);
    }
  }
  return found.sort();
}

/**
 * The files the corpus's expected outputs (`*.out`) report a syntax error
 * (E0001) in, as they name them (`corpus/check/x.cavra`, from tests/): the
 * cases, and any module they import, that may hold invalid tokens.
 */
function syntaxErrorFiles() {
  const named = new Set();
  for (const out of filesUnder(path.join(REPO_ROOT, 'tests', 'corpus'), '.out')) {
    for (const match of fs.readFileSync(out, 'utf8').matchAll(/error\[E0001\][^\n]*\n\s*--> (.+?\.cavra):\d+:\d+/g)) {
      named.add(match[1]);
    }
  }
  return [...named];
}

/** The repository-relative path of `file`, with `/` on every system. */
function relative(file) {
  return path.relative(REPO_ROOT, file).split(path.sep).join('/');
}

/** Whether a token carries a scope that says what it is. */
function hasOwnScope(token) {
  return token.scopes.some((scope) => scope !== 'source.cavra' && !scope.startsWith('meta.'));
}

/** `file:line:column: "text" [scopes]`, for a failure message. */
function locate(file, token) {
  return `${relative(file)}:${token.line}:${token.column}: ${JSON.stringify(token.text)} [${token.scopes.join(' ')}]`;
}

function report(what, problems) {
  const listed = problems.slice(0, MAX_LISTED).join('\n');
  const more = problems.length > MAX_LISTED ? `\n... and ${problems.length - MAX_LISTED} more` : '';
  return `${problems.length} ${what}:\n${listed}${more}`;
}

let packsPromise;

/** Every bundled pack with its tokens, tokenized once for all tests. */
function tokenizedPacks() {
  packsPromise ??= loadGrammar().then((grammar) =>
    PACK_DIRS.flatMap((dir) => filesUnder(path.join(REPO_ROOT, dir), '.cavra')).map((file) => ({
      file,
      tokens: tokenize(grammar, fs.readFileSync(file, 'utf8')),
    })),
  );
  return packsPromise;
}

test('every non-blank token of every bundled pack has a scope of its own', async (t) => {
  const packs = await tokenizedPacks();
  // Guards against passing on nothing, if the folders move.
  assert.ok(packs.length >= 20, `only ${packs.length} .cavra files found under ${PACK_DIRS.join(', ')} of ${REPO_ROOT}`);
  assert.ok(
    packs.some(({ file }) => file === path.join(REPO_ROOT, 'rules', 'routing.cavra')),
    'rules/routing.cavra is among the packs checked',
  );
  const problems = [];
  let checked = 0;
  for (const { file, tokens } of packs) {
    for (const token of tokens) {
      if (token.text.trim() === '') continue;
      checked += 1;
      if (!hasOwnScope(token)) problems.push(locate(file, token));
    }
  }
  t.diagnostic(`${packs.length} files, ${checked} non-blank tokens checked`);
  assert.equal(problems.length, 0, report('tokens without a scope of their own', problems));
});

test('packs that parse have no invalid token', async (t) => {
  const packs = await tokenizedPacks();
  const syntaxErrors = syntaxErrorFiles();
  assert.ok(syntaxErrors.length > 0, 'no `error[E0001]` followed by `--> FILE:LINE:COL` in tests/corpus/**/*.out: has the format changed?');
  const problems = [];
  let clean = 0;
  for (const { file, tokens } of packs) {
    const rel = relative(file);
    if (syntaxErrors.some((named) => rel === named || rel.endsWith(`/${named}`))) continue;
    clean += 1;
    for (const token of tokens) {
      if (token.scopes.some((scope) => scope.startsWith('invalid.'))) problems.push(locate(file, token));
    }
  }
  t.diagnostic(`${clean} packs without a syntax error checked, ${packs.length - clean} syntax-error cases exempt`);
  assert.equal(problems.length, 0, report('invalid tokens in packs that parse', problems));
});

/**
 * Assertions on a tokenized sample: `scopesOf(line, text, nth)` gives the
 * scopes of the nth token on that line whose text is exactly `text`;
 * `expectScope(line, text, prefix, nth)` asserts one of them starts with `prefix`.
 */
function sampleChecks(tokens) {
  const scopesOf = (line, text, nth = 0) => {
    const matches = tokens.filter((token) => token.line === line && token.text === text);
    const onLine = tokens.filter((token) => token.line === line).map((token) => `${JSON.stringify(token.text)} [${token.scopes.join(' ')}]`);
    assert.ok(matches[nth], `no token ${JSON.stringify(text)} (#${nth}) on sample line ${line}; its tokens:\n${onLine.join('\n')}`);
    return matches[nth].scopes;
  };
  const expectScope = (line, text, prefix, nth = 0) => {
    const scopes = scopesOf(line, text, nth);
    assert.ok(
      scopes.some((scope) => scope.startsWith(prefix)),
      `sample line ${line}: ${JSON.stringify(text)} should have a ${prefix}* scope, has [${scopes.join(' ')}]`,
    );
  };
  return { scopesOf, expectScope };
}

test('a sample gets the expected scope kinds', async () => {
  const sample = [
    /* 1 */ 'pack sample # the header',
    /* 2 */ 'type Window { start_at: time, owners: list<text>? }',
    /* 3 */ 'static input windows: list<Window>',
    /* 4 */ 'let open = first w in windows where w.start_at <= @2026-05-21T18:00:00Z + 30d',
    /* 5 */ 'decision route {',
    /* 6 */ '  when open exists => suppress window reason "open until {open.start_at}"',
    /* 7 */ '  otherwise => deliver with { type: "x", wait: 1h30m }',
    /* 8 */ '}',
    /* 9 */ 'readiness ready {',
    /* 10 */ '  check has_windows: windows is not empty else "none" pass "some"',
    /* 11 */ '  status due_soon when max(1, 2) > 1',
    /* 12 */ '}',
    /* 13 */ 'let by = null ?? false',
  ].join('\n');
  const { scopesOf, expectScope } = sampleChecks(tokenize(await loadGrammar(), sample));

  // Comments.
  expectScope(1, '#', 'punctuation.definition.comment');
  expectScope(1, ' the header', 'comment.line.number-sign');
  // Keywords: declarations, control, word operators, clauses.
  expectScope(1, 'pack', 'keyword.other.declaration.pack');
  expectScope(3, 'static', 'keyword.other.declaration.static');
  expectScope(4, 'first', 'keyword.other.quantifier');
  expectScope(4, 'in', 'keyword.operator.word');
  expectScope(4, 'where', 'keyword.control');
  expectScope(6, 'when', 'keyword.control');
  expectScope(6, 'exists', 'keyword.operator.word');
  expectScope(6, 'reason', 'keyword.other.clause.reason');
  expectScope(7, 'with', 'keyword.other.clause.with');
  expectScope(10, 'not', 'keyword.operator.logical');
  expectScope(10, 'pass', 'keyword.other.clause.pass');
  expectScope(11, 'status', 'keyword.other.clause.status');
  // Type names: declared, built-in, in type positions.
  expectScope(2, 'Window', 'entity.name.type');
  expectScope(2, 'time', 'support.type');
  expectScope(2, 'list', 'support.type');
  expectScope(2, '?', 'keyword.operator.optional');
  expectScope(3, 'Window', 'entity.name.type');
  // Literals.
  expectScope(4, '@2026-05-21T18:00:00Z', 'constant.numeric.timestamp');
  expectScope(4, '30d', 'constant.numeric.duration');
  expectScope(7, '1h30m', 'constant.numeric.duration');
  expectScope(13, 'null', 'constant.language.null');
  expectScope(13, 'false', 'constant.language.boolean');
  // Names: declarations, uses, fields, the quantifier's variable.
  expectScope(4, 'open', 'entity.name.variable');
  expectScope(4, 'w', 'variable.parameter');
  expectScope(4, 'windows', 'variable.other.cavra');
  expectScope(4, 'start_at', 'variable.other.property');
  expectScope(4, '.', 'punctuation.accessor');
  expectScope(5, 'route', 'entity.name.function.decision');
  expectScope(6, 'suppress', 'entity.name.function.action');
  expectScope(6, 'window', 'variable.other.enummember.category');
  expectScope(7, 'type', 'variable.other.property');
  expectScope(10, 'has_windows', 'entity.name.function.check');
  expectScope(11, 'max', 'support.function.builtin');
  // A contextual word stays a name where it is not a keyword.
  expectScope(13, 'by', 'entity.name.variable');
  // Operators and punctuation.
  expectScope(4, '<=', 'keyword.operator.comparison');
  expectScope(4, '+', 'keyword.operator.arithmetic');
  expectScope(6, '=>', 'keyword.operator.arrow');
  expectScope(13, '??', 'keyword.operator.null-coalescing');
  expectScope(7, '{', 'punctuation.section.braces.begin');

  // An interpolated text: the `{expr}` part is code, the rest is text.
  expectScope(6, 'open until ', 'string.quoted.double');
  assert.ok(!scopesOf(6, 'open until ').some((scope) => scope.startsWith('meta.interpolation')), 'plain text is not interpolation');
  expectScope(6, '{', 'punctuation.section.interpolation.begin');
  expectScope(6, 'open', 'meta.interpolation', 1); // the first `open` is the condition's
  expectScope(6, 'open', 'variable.other.cavra', 1);
  expectScope(6, 'start_at', 'variable.other.property');
  expectScope(6, 'start_at', 'meta.interpolation');
  expectScope(6, '}', 'punctuation.section.interpolation.end');
});

test('module headers and imports', async () => {
  const sample = [
    /* 1 */ 'module approvals',
    /* 2 */ 'use "common/approval.cavra" { Approval, Drill }',
    /* 3 */ 'use "common/drills.cavra"',
    /* 4 */ '  { Schedule }',
    /* 5 */ 'let module_name = use',
  ].join('\n');
  const { expectScope } = sampleChecks(tokenize(await loadGrammar(), sample));

  expectScope(1, 'module', 'keyword.other.declaration.module');
  expectScope(1, 'approvals', 'entity.name.namespace');
  expectScope(2, 'use', 'keyword.other.declaration.use');
  expectScope(2, 'common/approval.cavra', 'string.quoted.double');
  expectScope(2, 'Approval', 'variable.other.readwrite.import');
  expectScope(2, 'Drill', 'variable.other.readwrite.import');
  expectScope(4, 'Schedule', 'variable.other.readwrite.import');
  // `module` and `use` are words only in a header or an import.
  expectScope(5, 'module_name', 'entity.name.variable');
  expectScope(5, 'use', 'variable.other.cavra');
});
