/**
 * @since 0.1.0
 */
export * as Dashboard from "./Dashboard.js"
export * as Database from "./Database.js"
export * as Host from "./Host.js"
export * as Job from "./Job.js"
export * as JobClient from "./JobClient.js"
export * as JobError from "./JobError.js"
export * as JobRunner from "./JobRunner.js"
export * as Metrics from "./Metrics.js"
export * as Migrations from "./Migrations.js"
export * as Recurring from "./Recurring.js"
export * as Testing from "./Testing.js"
export * as Worker from "./Worker.js"
export * as WorkerError from "./WorkerError.js"
export * as WorkerRegistry from "./WorkerRegistry.js"
export * as WorkerStatus from "./WorkerStatus.js"
