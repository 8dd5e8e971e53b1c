#!/usr/bin/env node
// `npx savepoint`: npm links a workspace's bin only when its file exists at install time, and `npm ci` runs before
// `npm run build`, so the bin is this committed file, which loads the built CLI (src/cli/savepoint.ts).
import("../dist/cli/savepoint.js").catch((error) => {
  if (error?.code === "ERR_MODULE_NOT_FOUND" && String(error.message).includes("dist/cli/savepoint.js")) {
    console.error("savepoint: the console is not built; run npm run build first");
  } else {
    console.error(`savepoint: ${error?.message ?? error}`);
  }
  process.exit(1);
});
