/**
 * The development entry point, `effect-workers/dev`: what a development
 * machine or a test run uses and a production install does not need.
 *
 * @since 0.1.0
 */
export * as DevDatabase from "./DevDatabase.js"
