#!/usr/bin/env node
/**
 * The `effect-workers` command: see docs/cli.md, or `effect-workers --help`.
 *
 * @since 0.1.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cli from "./internal/cli/app.js"
import { forceExitOnSecondSignal } from "./internal/shutdown.js"

forceExitOnSecondSignal()
NodeRuntime.runMain(Cli.run(process.argv), {
  disableErrorReporting: true,
  disablePrettyLogger: true,
  teardown: Cli.teardown
})
