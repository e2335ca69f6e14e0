// Task 2 curation: raw whole volumes → tiles in the Task 1 layout, with a manifest and a summary.
export { curate, keptFiles, readManifest, structureOfVolume, volumeName, type CurateOptions, type CurateSummary, type ManifestLine, type VolumeInfo } from "./curate.ts";
export { DEFAULT_FILTERS, REJECT_REASONS, gridStarts, rejectReason, type Filters, type RejectReason } from "./tiles.ts";
export { assembleOverview, overviewFactor, overviewTasks, scanOverviewBox, tissueFraction, type Overview } from "./overview.ts";
export * from "./stats.ts";
