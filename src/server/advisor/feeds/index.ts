/** Advisory feeds: the Debian security tracker, OSV, and the offline Debian archive builder. */
export { importDebianTracker, severityFromUrgency, type DebianTrackerOptions } from './debian-tracker.js';
export { importOsv, DEBIAN_CODENAMES } from './osv.js';
export {
  buildDebianArchiveFeed,
  buildDebianArchiveFeedDetailed,
  advisoriesFromChangelog,
  type ArchiveFeed,
  type ArchiveFeedOptions,
  type ArchiveFeedProgress,
  type SourceReport,
} from './debian-archive/archive-feed.js';
export { isKernelBinary, isKernelSource } from './kernel.js';
