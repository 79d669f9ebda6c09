#!/usr/bin/env node
// The `kubegate` command: every command (proxy, agent, dev, migrate, admin …) is in dist/proxy/cli.
const { main } = await import('../dist/proxy/cli/main.js');
const code = await main(process.argv.slice(2));
if (code >= 0) process.exitCode = code;
