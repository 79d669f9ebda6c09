#!/usr/bin/env node
// The `kubegate` command: dispatches to the compiled programs in dist/.
const [cmd] = process.argv.slice(2);
if (cmd === 'agent') {
  const { runAgent } = await import('../dist/agent/main.js');
  await runAgent();
} else if (cmd === 'dev') {
  const { runDev } = await import('../dist/test/dev/dev-stack.js');
  await runDev(process.argv.slice(3));
} else {
  const { main } = await import('../dist/proxy/cli/main.js');
  const code = await main(process.argv.slice(2));
  if (code >= 0) process.exitCode = code;
}
